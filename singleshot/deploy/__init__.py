"""Deployment: ONNX export (decoding in the graph), numpy post-processing, int8 quantisation."""
