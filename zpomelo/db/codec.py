"""Document bytes: msgpack of the field dict. Kept apart so both engines store the same bytes."""
import functools

import msgpack

# One Packer for the process: msgpack.packb makes a new one per call, with a fresh buffer,
# which cost 5x the packing of a small document. Only greenlets of the hub pack documents
# (Transaction.changes), and a Packer call runs to its end without yielding.
pack = msgpack.Packer(use_bin_type=True).pack

# a partial, not a function: no Python frame per document read
unpack = functools.partial(msgpack.unpackb, raw=False, strict_map_key=False)
