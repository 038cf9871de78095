#!/usr/bin/env python3
"""Copy a GGUF model keeping only its first N transformer blocks, so that a probe reading the
"last layer" (`floodgate guard train --toxicity-probe`, llama.cpp's mean pooling) reads layer N.

llama.cpp refuses a file whose tensor count differs from what its metadata implies, so a
shallower read needs a shallower file: the block count is rewritten and blk.N.* onwards are
dropped; everything else (vocabulary, embeddings, output norm) is copied byte for byte.
Needs the `gguf` package (pip install gguf).

    python3 bench/experiments/gguf_truncate.py MODEL.gguf OUT.gguf 6
    mkdir -p $FLOODGATE_HOME/models/gemma-l6 && mv OUT.gguf $FLOODGATE_HOME/models/gemma-l6/gemma-l6.gguf
    floodgate guard train --toxicity-extra ../shared/data/toxicity.dev.jsonl --toxicity-probe gemma-l6

Measured 2026-12-06 with that command (5-fold out-of-fold on toxicity.dev, threshold 0.5) in
bench/README.md, "Which layer the probe reads".
"""
import argparse
import re

import gguf


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("blocks", type=int)
    args = ap.parse_args()
    reader = gguf.GGUFReader(args.src)
    arch = reader.fields["general.architecture"].contents()
    count_key = f"{arch}.block_count"
    have = int(reader.fields[count_key].contents())
    if not 0 < args.blocks <= have:
        raise SystemExit(f"{args.src} has {have} blocks; asked to keep {args.blocks}")
    writer = gguf.GGUFWriter(args.dst, arch)
    for field in reader.fields.values():
        # The writer adds the architecture and the GGUF.* header fields itself.
        if field.name == "general.architecture" or field.name.startswith("GGUF."):
            continue
        kind = field.types[0]
        sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        value = args.blocks if field.name == count_key else field.contents()
        writer.add_key_value(field.name, value, kind, sub_type=sub)

    def kept(name):
        m = re.match(r"blk\.(\d+)\.", name)
        return m is None or int(m.group(1)) < args.blocks

    tensors = [t for t in reader.tensors if kept(t.name)]
    for t in tensors:
        writer.add_tensor_info(t.name, t.data.shape, t.data.dtype, t.data.nbytes, t.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for t in tensors:
        writer.write_tensor_data(t.data, tensor_endianess=reader.endianess)
    writer.close()
    print(f"{args.dst}: {arch}, {args.blocks} of {have} blocks, {len(tensors)} tensors")


if __name__ == "__main__":
    main()
