// Where a page's game server listens (a gate, a connector), for pages served by
// zpomelo/static_site.py: `?<param>=host:port` (or just a port) in the page's address, else the
// JSON `infoFile` the page's own server answers (`{"port": ...}`: the port it really bound),
// else `defaultPort` (the page is served by some other web server). The host is the page's.
export async function serverAddress(param, infoFile, defaultPort) {
  const host = window.location.hostname || '127.0.0.1';
  const given = new URLSearchParams(window.location.search).get(param);
  if (given) {
    const [givenHost, givenPort] = given.includes(':') ? given.split(':') : [host, given];
    return { host: givenHost || host, port: Number(givenPort) };
  }
  try {
    const reply = await fetch(infoFile, { cache: 'no-store' });
    if (reply.ok) {
      const info = await reply.json();
      if (info.port) return { host, port: info.port };
    }
  } catch (err) {
    // not served by its zpomelo server: the default port
  }
  return { host, port: defaultPort };
}
