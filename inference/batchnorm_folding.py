"""Fold each inference-mode BatchNorm into the convolution before it, for embedding only.

At inference BatchNorm is an affine map per channel with its running statistics,

    y = gamma * (x - running_mean) / sqrt(running_var + eps) + beta,

so after a convolution ``x = W * input + b`` it is the convolution with

    W' = W * s,   b' = (b - running_mean) * s + beta,   s = gamma / sqrt(running_var + eps)

(per output channel; ``gamma`` = 1 where the layer fixes it). One operator less per convolution:
the bfloat16 network embeds with the convolutions' own kernels and nothing between them but ReLU,
pooling and concatenation. Folding is exact in real arithmetic; in float32 the embeddings move by
round-off only. A BatchNorm is folded only where it is safe: its input is a convolution (NCHW,
channel axis 1) read by nothing else, whose weight feeds no other operator.
"""
import json

import mxnet as mx
import numpy as np

FOLDED_BIAS_SUFFIX = "_folded_bias"


def _truthy(value):
    return str(value).strip().lower() in ("true", "1")


def _consumers(nodes):
    """node id → list of (consumer id, input position)."""
    readers = {}
    for consumer, node in enumerate(nodes):
        for position, (source, _, _) in enumerate(node["inputs"]):
            readers.setdefault(source, []).append((consumer, position))
    return readers


def _foldable_pairs(nodes, heads):
    """``[(convolution id, batchnorm id)]`` that can be folded."""
    readers = _consumers(nodes)
    head_ids = {head[0] for head in heads}
    pairs = []
    for bn_id, node in enumerate(nodes):
        if node["op"] != "BatchNorm" or int(node.get("attrs", {}).get("axis", 1)) != 1:
            continue
        conv_id = node["inputs"][0][0]
        conv = nodes[conv_id]
        if conv["op"] != "Convolution" or conv.get("attrs", {}).get("layout", "None") not in ("None", "NCHW"):
            continue
        if len(readers.get(conv_id, [])) != 1 or conv_id in head_ids:
            continue  # the convolution's raw output is needed elsewhere
        weight_id = conv["inputs"][1][0]
        if nodes[weight_id]["op"] != "null" or len(readers.get(weight_id, [])) != 1:
            continue  # a computed or shared weight
        pairs.append((conv_id, bn_id))
    return pairs


def fold_batchnorm(symbol, params):
    """``(folded symbol, folded params)``: ``symbol`` with every foldable BatchNorm folded into its
    convolution; ``params`` maps the symbol's argument and auxiliary names to NDArrays (float32).
    The folded convolutions' weights are replaced, their biases added (``<conv>_folded_bias``),
    and the folded BatchNorms' parameters dropped."""
    graph = json.loads(symbol.tojson())
    nodes, heads = graph["nodes"], graph["heads"]
    pairs = _foldable_pairs(nodes, heads)
    params = dict(params)
    bias_of = {}
    for conv_id, bn_id in pairs:
        conv, bn = nodes[conv_id], nodes[bn_id]
        attrs = bn.get("attrs", {})
        gamma, beta, mean, var = (params[nodes[entry[0]]["name"]].asnumpy().astype(np.float64)
                                  for entry in bn["inputs"][1:5])
        if _truthy(attrs.get("fix_gamma", "True")):  # MXNet's operator default fixes gamma at 1
            gamma = np.ones_like(gamma)
        scale = gamma / np.sqrt(var + float(attrs.get("eps", 1e-3)))
        weight_name = nodes[conv["inputs"][1][0]]["name"]
        weight = params[weight_name].asnumpy().astype(np.float64)
        has_bias = not _truthy(conv.get("attrs", {}).get("no_bias", "False"))
        bias = params[nodes[conv["inputs"][2][0]]["name"]].asnumpy().astype(np.float64) if has_bias else 0.0
        params[weight_name] = mx.nd.array(weight * scale.reshape((-1,) + (1,) * (weight.ndim - 1)), dtype="float32")
        bias_of[conv_id] = ((bias - mean) * scale + beta).astype(np.float32)
    # Rebuild the node list: a bias variable before each folded convolution, BatchNorms dropped
    # and their readers pointed at the convolution.
    folded_bn = {bn_id: conv_id for conv_id, bn_id in pairs}
    new_nodes, new_id, bias_entry = [], {}, {}
    for old_id, node in enumerate(nodes):
        if old_id in folded_bn:
            continue
        if old_id in bias_of:
            bias_name = node["name"] + FOLDED_BIAS_SUFFIX
            params[bias_name] = mx.nd.array(bias_of[old_id], dtype="float32")
            bias_entry[old_id] = [len(new_nodes), 0, 0]
            new_nodes.append({"op": "null", "name": bias_name, "inputs": []})
            node = dict(node, attrs=dict(node.get("attrs", {}), no_bias="False"), inputs=node["inputs"][:2])
        new_id[old_id] = len(new_nodes)
        new_nodes.append(node)

    def remap(entry):
        source = folded_bn.get(entry[0], entry[0])
        return [new_id[source], entry[1] if entry[0] not in folded_bn else 0, entry[2]]

    for old_id, index in new_id.items():
        node = new_nodes[index]
        node["inputs"] = [remap(e) for e in node["inputs"]] + ([bias_entry[old_id]] if old_id in bias_entry else [])
    folded = {"nodes": new_nodes, "heads": [remap(h) for h in heads],
              "arg_nodes": [i for i, node in enumerate(new_nodes) if node["op"] == "null"],
              "attrs": graph.get("attrs", {})}
    folded_symbol = mx.sym.load_json(json.dumps(folded))
    wanted = set(folded_symbol.list_arguments()) | set(folded_symbol.list_auxiliary_states())
    return folded_symbol, {name: value for name, value in params.items() if name in wanted}
