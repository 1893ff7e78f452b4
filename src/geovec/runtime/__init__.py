"""The runtime beside the model: ONNX export of a model's stages (``export``), the runners that execute them and
their selection at load (``backends``), int8 graphs (``quantize``) and load stamps (``load_stamp``)."""
