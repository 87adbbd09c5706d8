"""Build of the optional native link walk (inlink/_linkwalk.c); metadata is in pyproject.toml.

The extension is optional: when it does not compile, the pure-Python package still installs
and inlink.extract uses its Python walk (docs/extract.md, "Native fast path").
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "inlink._linkwalk",
            sources=["inlink/_linkwalk.c"],
            libraries=["dl"],
            extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wno-unused-parameter"],
            optional=True,
        )
    ]
)
