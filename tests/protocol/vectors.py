"""The packages of docs/protocol.md section 9, byte for byte: what a Pomelo client and server
send for one request, its answer, a push, a handshake refusal and a kick. Checked against our
codecs in test_vectors.py and spoken by the fake server of test_client.py."""


def h(text):
    return bytes.fromhex(text.replace(" ", ""))


REQUEST_VECTOR = h("04 00 00 2a 00 01 1c 63 6f 6e 6e 65 63 74 6f 72 2e 65 6e 74 72 79 48 61 6e"
                   " 64 6c 65 72 2e 65 6e 74 72 79 7b 22 75 69 64 22 3a 22 61 22 7d")
REQUEST_DICT_VECTOR = h("04 00 00 0f 01 01 00 08 7b 22 75 69 64 22 3a 22 61 22 7d")
ERROR_RESPONSE_VECTOR = h("04 00 00 0e 04 03 7b 22 63 6f 64 65 22 3a 35 30 30 7d")
PUSH_VECTOR = h("04 00 00 14 06 06 6f 6e 43 68 61 74 7b 22 6d 73 67 22 3a 22 68 69 22 7d")
PUSH_PROTOBUF_VECTOR = h("04 00 00 0a 07 00 0d 0a 05 68 65 6c 6c 6f")
HANDSHAKE_ERROR_VECTOR = h("01 00 00 0c 7b 22 63 6f 64 65 22 3a 35 30 30 7d")
KICK_VECTOR = h("05 00 00 11 7b 22 72 65 61 73 6f 6e 22 3a 22 6b 69 63 6b 22 7d")
