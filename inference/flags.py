"""Flags of the tools that use a trained network (embed.py, evaluate.py).
"""



def add_inference_dtype_flag(group):
    """embed.py's and evaluate.py's --dtype: the precision a trained network embeds in."""
    group.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"],
                       help="precision the network embeds in, whatever the run trained in: bfloat16 "
                            "on CPUs with BF16 instructions, float16 "
                            "on GPUs; the embeddings are float32 (utils/precision.py)")
