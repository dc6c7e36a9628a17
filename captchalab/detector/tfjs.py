"""A TF.js graph model (model.json and its weight shards) as a TensorFlow GraphDef, without the
`tensorflowjs` package (which pins jax, flax and another TensorFlow): the topology is a GraphDef
written as JSON; the weights are the Const nodes' values, stored apart, some quantised."""

from __future__ import annotations

import numpy as np

from ..errors import CaptchalabError

# TF.js keeps no int64: the converter stored int64 tensors and attributes as int32
INDEX_ATTRS = ("Tindices", "Tidx", "T", "out_type", "index_type", "Tshape", "Tpaddings", "Tperm", "Taxis", "TI")


def weight_arrays(manifest: list[dict], blob: bytes) -> dict[str, np.ndarray]:
    """The named weights of a TF.js weights manifest, read in order from the concatenated shards;
    float16- and uint8/uint16-quantised ones restored to float32."""
    arrays, offset = {}, 0
    for group in manifest:
        for spec in group["weights"]:
            quantised = spec.get("quantization")
            dtype = np.dtype(quantised["dtype"] if quantised else spec["dtype"])
            count = int(np.prod(spec["shape"], dtype=np.int64)) if spec["shape"] else 1
            if offset + count * dtype.itemsize > len(blob):
                raise CaptchalabError(f"TF.js weights: {spec['name']} runs past the end of the weight files")
            raw = np.frombuffer(blob, dtype, count, offset)
            offset += count * dtype.itemsize
            if quantised and quantised["dtype"] != "float16":
                raw = raw.astype(np.float32) * quantised["scale"] + quantised["min"]
            arrays[spec["name"]] = raw.astype(spec["dtype"]).reshape(spec["shape"])
    if offset != len(blob):
        raise CaptchalabError(f"TF.js weights: {len(blob) - offset} bytes left over after the last weight")
    return arrays


def graphdef_from_tfjs(model: dict, blob: bytes) -> bytes:
    """The serialised GraphDef of a TF.js graph model (`model`: its parsed model.json), with every
    weight in place as a Const value and int64 index types restored as TF.js stored them (int32)."""
    import tensorflow as tf
    from google.protobuf import json_format
    from tensorflow.core.framework import graph_pb2

    if model.get("format") != "graph-model":
        raise CaptchalabError(f"not a TF.js graph model (format {model.get('format')!r})")
    topology = model["modelTopology"]
    graph = json_format.ParseDict(
        {key: topology[key] for key in ("node", "library", "versions") if key in topology}, graph_pb2.GraphDef()
    )
    weights = weight_arrays(model["weightsManifest"], blob)
    missing = set(weights) - {node.name for node in graph.node}
    if missing:
        raise CaptchalabError(f"TF.js weights name no node of the graph: {sorted(missing)[:3]}")
    int64, int32 = tf.int64.as_datatype_enum, tf.int32.as_datatype_enum
    for node in graph.node:
        if node.name in weights:
            value = weights[node.name]
            node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value))
            node.attr["dtype"].type = tf.as_dtype(value.dtype).as_datatype_enum
        for key in INDEX_ATTRS:
            if key in node.attr and node.attr[key].type == int64:
                node.attr[key].type = int32
    return graph.SerializeToString()


def graph_function(graphdef: bytes, inputs: list[str], outputs: list[str]):
    """A TensorFlow function running the GraphDef from `inputs` to `outputs` (tensor names)."""
    import tensorflow as tf
    from tensorflow.core.framework import graph_pb2

    graph = graph_pb2.GraphDef()
    graph.ParseFromString(graphdef)
    wrapped = tf.compat.v1.wrap_function(lambda: tf.compat.v1.import_graph_def(graph, name=""), [])
    found = wrapped.graph.get_tensor_by_name
    pruned = wrapped.prune([found(name) for name in inputs], [found(name) for name in outputs])
    return lambda *arrays: [value.numpy() for value in pruned(*[tf.constant(a) for a in arrays])]
