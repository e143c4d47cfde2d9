"""open_connection, start_server and their Unix variants; StreamWriter and
Server with asyncio's names.

The work is in C (connect.c, server.c, writer.c, wrapped in pystream.c):
each call here checks its arguments, calls the C function and awaits the
C future it returns.  What stays in Python is what is not on the
per-message path: get_extra_info(), the transport view, the socket views,
and ``async with``."""

import socket

from . import _core, _tls
from ._core import StreamReader

_DEFAULT_LIMIT = 2 ** 16  # 64 KiB, asyncio's


class _TransportSocket:
    """A view of a socket the C library owns, as asyncio's TransportSocket:
    getsockname(), getpeername(), getsockopt(), setsockopt(), fileno().
    It never closes the fd: each call borrows it for the call only."""

    __slots__ = ('_fd',)

    def __init__(self, fd):
        self._fd = fd

    def _call(self, name, *args):
        s = socket.socket(fileno=self._fd)
        try:
            return getattr(s, name)(*args)
        finally:
            s.detach()

    def fileno(self):
        return self._fd

    def getsockname(self):
        return self._call('getsockname')

    def getpeername(self):
        return self._call('getpeername')

    def getsockopt(self, *args):
        return self._call('getsockopt', *args)

    def setsockopt(self, *args):
        return self._call('setsockopt', *args)

    def _attr(self, name):
        s = socket.socket(fileno=self._fd)
        try:
            return getattr(s, name)
        finally:
            s.detach()

    @property
    def family(self):
        return self._attr('family')

    @property
    def type(self):
        return self._attr('type')

    def __repr__(self):
        return f'<asyncstreams.TransportSocket fd={self._fd}>'


class _Transport:
    """writer.transport: the transport calls on the C transport behind the
    writer."""

    __slots__ = ('_writer',)

    def __init__(self, writer):
        self._writer = writer

    def write(self, data):
        self._writer.write(data)

    def writelines(self, list_of_data):
        self._writer.writelines(list_of_data)

    def write_eof(self):
        self._writer.write_eof()

    def can_write_eof(self):
        return self._writer.can_write_eof()

    def close(self):
        self._writer.close()

    def abort(self):
        self._writer._abort()

    def is_closing(self):
        return self._writer.is_closing()

    def get_write_buffer_size(self):
        return self._writer._get_write_buffer_size()

    def get_write_buffer_limits(self):
        return self._writer._get_write_buffer_limits()

    def set_write_buffer_limits(self, high=None, low=None):
        self._writer._set_write_buffer_limits(high, low)

    def get_extra_info(self, name, default=None):
        return self._writer.get_extra_info(name, default)


class StreamWriter(_core.StreamWriter):
    """asyncio's StreamWriter on the C writer.  One difference, on purpose:
    a write after close() or after the connection was lost raises (the
    connection's error, or RuntimeError) instead of being dropped silently."""

    @property
    def transport(self):
        return _Transport(self)

    def get_extra_info(self, name, default=None):
        if name == 'peername':
            value = self._peername()
        elif name == 'sockname':
            value = self._sockname()
        elif name == 'socket':
            fd = self._fileno()
            value = _TransportSocket(fd) if fd >= 0 else None
        elif name in _tls.TLS_KEYS:
            value = _tls.extra_info(self, name)
        else:
            value = None
        return default if value is None else value

    async def start_tls(self, sslcontext, *, server_hostname=None,
                        ssl_handshake_timeout=None, ssl_shutdown_timeout=None):
        """Upgrade the connection to TLS: the server's side if a server
        made it; returns once the handshake is done."""
        if not isinstance(sslcontext, _tls._ssl.SSLContext):
            raise TypeError('sslcontext is expected to be an instance of ssl.SSLContext, '
                            f'got {sslcontext!r}')
        await self.drain()
        handshake, shutdown = _tls.timeouts(ssl_handshake_timeout, ssl_shutdown_timeout)
        await _tls.start(self, sslcontext, self._server_side, server_hostname,
                         handshake, shutdown)

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc_info):
        self.close()
        await self.wait_closed()

    def __repr__(self):
        info = [type(self).__name__, f'fd={self._fileno()}']
        if self.is_closing():
            info.append('closing')
        return '<{}>'.format(' '.join(info))


class Server(_core.Server):
    """asyncio's Server on the C server."""

    @property
    def sockets(self):
        return tuple(_TransportSocket(self._socket_fd(i)) for i in range(self._nsockets()))

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc_info):
        self.close()
        await self.wait_closed()

    def __repr__(self):
        return f'<asyncstreams.Server sockets={self.sockets!r}>'


_core._set_types(StreamWriter, Server)


def _ssl_args(kwds):
    return (kwds.pop('ssl', None), kwds.pop('server_hostname', None),
            kwds.pop('ssl_handshake_timeout', None), kwds.pop('ssl_shutdown_timeout', None))


def _server_ssl_args(kwds):
    # No server_hostname: a server has none, and asyncio refuses it.
    return (kwds.pop('ssl', None), kwds.pop('ssl_handshake_timeout', None),
            kwds.pop('ssl_shutdown_timeout', None))


def _tls_server_cb(client_connected_cb, ssl, hs_timeout, sd_timeout):
    """The callback a server calls: the user's, behind a handshake with ssl=."""
    if isinstance(ssl, bool):
        raise TypeError('ssl argument must be an SSLContext or None')
    if ssl is None:
        _tls.only_with_ssl(None, None, hs_timeout, sd_timeout)
        return client_connected_cb
    if not callable(client_connected_cb):
        raise TypeError('client_connected_cb must be callable')
    hs_timeout, sd_timeout = _tls.timeouts(hs_timeout, sd_timeout)
    return _tls.server_handler(client_connected_cb, ssl, hs_timeout, sd_timeout)


def _unexpected(kwds):
    if kwds:
        raise TypeError(f'unsupported argument(s): {", ".join(sorted(kwds))}')


def _port(port):
    return None if port is None else str(port)


async def open_connection(host=None, port=None, *, limit=_DEFAULT_LIMIT, **kwds):
    """Connect to host:port; return (StreamReader, StreamWriter)."""
    ssl, server_hostname, hs_timeout, sd_timeout = _ssl_args(kwds)
    family = kwds.pop('family', 0)
    local_addr = kwds.pop('local_addr', None)
    kwds.pop('proto', None)
    kwds.pop('flags', None)
    _unexpected(kwds)
    if limit <= 0:
        raise ValueError('Limit cannot be <= 0')
    if host is None and port is None:
        # asyncio's words (it also takes a sock=, which we do not).
        raise ValueError('host and port was not specified and no sock specified')
    _tls.only_with_ssl(ssl, server_hostname, hs_timeout, sd_timeout)
    if ssl and server_hostname is None:
        if not host:
            raise ValueError('You must set server_hostname when using ssl without a host')
        server_hostname = host
    if ssl:
        ctx = _tls.client_context(ssl, server_hostname)
        hs_timeout, sd_timeout = _tls.timeouts(hs_timeout, sd_timeout)
    lhost = lport = None
    if local_addr is not None:
        lhost, lport = local_addr[0], _port(local_addr[1])
    conn = await _core._open_connection(host, _port(port), limit, int(family), lhost, lport)
    if not ssl:
        return conn
    return await _tls.open_client(conn, ctx, server_hostname, hs_timeout, sd_timeout)


async def open_unix_connection(path=None, *, limit=_DEFAULT_LIMIT, **kwds):
    """Connect to the Unix socket at path; return (StreamReader, StreamWriter)."""
    ssl, server_hostname, hs_timeout, sd_timeout = _ssl_args(kwds)
    _unexpected(kwds)
    if limit <= 0:
        raise ValueError('Limit cannot be <= 0')
    if ssl and server_hostname is None:
        raise ValueError('you have to pass server_hostname when using ssl')
    _tls.only_with_ssl(ssl, server_hostname, hs_timeout, sd_timeout)
    if ssl:
        ctx = _tls.client_context(ssl, server_hostname)
        hs_timeout, sd_timeout = _tls.timeouts(hs_timeout, sd_timeout)
    conn = await _core._open_unix_connection(path, limit)
    if not ssl:
        return conn
    return await _tls.open_client(conn, ctx, server_hostname, hs_timeout, sd_timeout)


async def start_server(client_connected_cb, host=None, port=None, *,
                       limit=_DEFAULT_LIMIT, **kwds):
    """Listen on host:port; call client_connected_cb(reader, writer) for each
    connection.  A coroutine it returns runs as a Task the server tracks."""
    ssl, hs_timeout, sd_timeout = _server_ssl_args(kwds)
    client_connected_cb = _tls_server_cb(client_connected_cb, ssl, hs_timeout, sd_timeout)
    family = kwds.pop('family', 0)
    backlog = kwds.pop('backlog', 100)
    reuse_address = kwds.pop('reuse_address', None)
    reuse_port = kwds.pop('reuse_port', None)
    start_serving = kwds.pop('start_serving', True)
    kwds.pop('flags', None)
    _unexpected(kwds)
    if limit <= 0:
        raise ValueError('Limit cannot be <= 0')
    if host is not None and not isinstance(host, str):
        raise NotImplementedError('one host (a string or None) per server')
    ra = 0 if reuse_address is None else (1 if reuse_address else -1)
    rp = 1 if reuse_port else 0
    return await _core._start_server(client_connected_cb, host, _port(port) or '0', limit,
                                     int(family), int(backlog), ra, rp, bool(start_serving))


async def start_unix_server(client_connected_cb, path=None, *, limit=_DEFAULT_LIMIT, **kwds):
    """Listen on the Unix socket at path, as start_server()."""
    ssl, hs_timeout, sd_timeout = _server_ssl_args(kwds)
    client_connected_cb = _tls_server_cb(client_connected_cb, ssl, hs_timeout, sd_timeout)
    backlog = kwds.pop('backlog', 100)
    start_serving = kwds.pop('start_serving', True)
    cleanup_socket = kwds.pop('cleanup_socket', True)
    _unexpected(kwds)
    if limit <= 0:
        raise ValueError('Limit cannot be <= 0')
    return await _core._start_unix_server(client_connected_cb, path, limit, int(backlog),
                                          bool(start_serving), bool(cleanup_socket))
