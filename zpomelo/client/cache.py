"""HandshakeCache: the dictionary and protos a cluster sent, reused by later handshakes."""


class HandshakeCache:
    """What a server sent in its handshake (dictionary, protos and their versions), to reuse.

    Pass the same cache to every `Client.connect` to one cluster: the next handshake sends the
    cached versions and the server leaves out the dictionary and protos when they still match.
    """

    def __init__(self):
        self.dict_version = None
        self.dict_sys = None       # {"dict", "routeToCode", "codeToRoute", "dictVersion"} as received
        self.proto_version = None
        self.protos = None         # {"server", "client", "version"} as received

    def request_sys(self):
        """The version fields of the client's handshake sys."""
        sys = {"protoVersion": self.proto_version if self.proto_version is not None else 0}
        if self.dict_version is not None:
            sys["dictVersion"] = self.dict_version
        return sys

    def complete(self, sys):
        """Fill the reply's missing dict/protos from the cache and remember new ones; -> sys."""
        sys = dict(sys)
        if sys.get("useDict"):
            if "dict" in sys or "routeToCode" in sys:
                self.dict_sys = {key: sys[key] for key in ("dict", "routeToCode", "codeToRoute",
                                                           "dictVersion") if key in sys}
                self.dict_version = sys.get("dictVersion")
            elif self.dict_sys is not None:
                sys.update(self.dict_sys)
        if sys.get("useProto"):
            protos = sys.get("protos")
            if protos:
                self.protos = protos
                self.proto_version = protos.get("version")
            elif self.protos is not None:
                sys["protos"] = self.protos
        return sys
