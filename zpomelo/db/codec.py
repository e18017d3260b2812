"""Document bytes: msgpack of the field dict. Kept apart so both engines store the same bytes."""
import msgpack


def pack(value):
    return msgpack.packb(value, use_bin_type=True)


def unpack(data):
    return msgpack.unpackb(data, raw=False, strict_map_key=False)
