"""Build of the optional native parts; metadata is in pyproject.toml.

- inlink/_linkwalk.c: the link walk (docs/extract.md, "Native fast path");
- inlink/_linkpack.c: packing a chunk's links into Arrow buffers, with their hashes
  (docs/ingest.md, "Native packing").

Both are optional: when one does not compile, the pure-Python package still installs and uses
its Python twin.
"""

from setuptools import Extension, setup


def native(name: str) -> Extension:
    return Extension(
        f"inlink.{name}",
        sources=[f"inlink/{name}.c"],
        depends=["inlink/_cutil.h"],
        libraries=["dl"],
        extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wno-unused-parameter"],
        optional=True,
    )


setup(ext_modules=[native("_linkwalk"), native("_linkpack")])
