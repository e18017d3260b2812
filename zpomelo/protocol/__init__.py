"""Pure Pomelo wire codecs: bytes <-> objects, no sockets, no gevent, no application.

package    the 4-byte-header package layer and an incremental decoder
message    request / notify / response / push inside DATA packages
dictionary route compression (route <-> 2-byte code) and its version
protobuf   pomelo-protobuf bodies
handshake  handshake and kick bodies
codec      ServerCodec / ClientCodec: all of the above for whole messages
websocket  RFC 6455 framing
"""
