"""The HTTP side of inlink: one ASGI app (`create_app`), auth and credits, output formats,
and one module per vendor dialect that maps its parameters and fields onto the query layer.
"""
