"""TLS for the streams: ssl= and its companions, checked as asyncio checks
them, and start_tls.

The C library runs the TLS state machine (lib/tls.c); the engine under it
is the user's own ssl.SSLContext, through an ssl.SSLObject between two
ssl.MemoryBIOs (pytls.c), as asyncio's sslproto does.  So the context's
verify mode, CAs, certificates, ALPN and ciphers are all honoured, and the
errors are the ssl module's own exception objects."""

import ssl as _ssl

from . import _core

HANDSHAKE_TIMEOUT = 60.0  # asyncio's constants.SSL_HANDSHAKE_TIMEOUT
SHUTDOWN_TIMEOUT = 30.0   # constants.SSL_SHUTDOWN_TIMEOUT


def timeouts(handshake, shutdown):
    """The two timeouts, defaulted and checked as SSLProtocol does."""
    if handshake is None:
        handshake = HANDSHAKE_TIMEOUT
    elif handshake <= 0:
        raise ValueError(f'ssl_handshake_timeout should be a positive number, got {handshake}')
    if shutdown is None:
        shutdown = SHUTDOWN_TIMEOUT
    elif shutdown <= 0:
        raise ValueError(f'ssl_shutdown_timeout should be a positive number, got {shutdown}')
    return float(handshake), float(shutdown)


def only_with_ssl(ssl, server_hostname, handshake, shutdown, hostname_check=True):
    """asyncio's refusals of TLS companions without ssl=."""
    if hostname_check and server_hostname is not None and not ssl:
        raise ValueError('server_hostname is only meaningful with ssl')
    if handshake is not None and not ssl:
        raise ValueError('ssl_handshake_timeout is only meaningful with ssl')
    if shutdown is not None and not ssl:
        raise ValueError('ssl_shutdown_timeout is only meaningful with ssl')


def client_context(ssl, server_hostname):
    """ssl=True is a default context, as asyncio's
    _create_transport_context(); a context given is used as it is."""
    if isinstance(ssl, bool):
        ctx = _ssl.create_default_context()
        if not server_hostname:
            ctx.check_hostname = False
        return ctx
    return ssl


async def start(writer, ctx, server_side, server_hostname, handshake, shutdown):
    """Put TLS under writer's connection and wait for the handshake.  The
    handshake's failure raises the ssl module's exception (the C side has
    closed the connection)."""
    incoming = _ssl.MemoryBIO()
    outgoing = _ssl.MemoryBIO()
    hostname = server_hostname if server_hostname and not server_side else None
    sslobj = ctx.wrap_bio(incoming, outgoing, server_side=server_side,
                          server_hostname=hostname)
    writer._tls_context = ctx
    await _core._start_tls(writer, sslobj, incoming, outgoing, handshake, shutdown)
    writer._tls_object = sslobj


async def open_client(conn, ctx, server_hostname, handshake, shutdown):
    """open_connection's TLS step over the plain (reader, writer)."""
    reader, writer = conn
    try:
        await start(writer, ctx, False, server_hostname, handshake, shutdown)
    except BaseException:
        writer._abort()
        raise
    return reader, writer


def server_handler(client_connected_cb, ctx, handshake, shutdown):
    """start_server's callback with TLS: the handshake first, then the
    user's callback, as asyncio calls it only once the handshake is done.
    A failed handshake closes the connection without a report, as asyncio
    reports it only in debug mode."""
    async def handshake_then_serve(reader, writer):
        try:
            await start(writer, ctx, True, None, handshake, shutdown)
        except (OSError, TimeoutError):
            writer._abort()
            return
        res = client_connected_cb(reader, writer)
        if hasattr(res, '__await__'):
            await res
    return handshake_then_serve


def server_context(ssl):
    if isinstance(ssl, bool):
        raise TypeError('ssl argument must be an SSLContext or None')
    return ssl


def extra_info(writer, name):
    """get_extra_info's TLS keys, as asyncio's SSL transport has them
    (None until the handshake is done, or without TLS)."""
    if name == 'sslcontext':
        return getattr(writer, '_tls_context', None)
    sslobj = getattr(writer, '_tls_object', None)
    if sslobj is None:
        return None
    if name == 'ssl_object':
        return sslobj
    if name == 'peercert':
        return sslobj.getpeercert()
    if name == 'cipher':
        return sslobj.cipher()
    if name == 'compression':
        return sslobj.compression()
    return None


TLS_KEYS = frozenset(('sslcontext', 'ssl_object', 'peercert', 'cipher', 'compression'))
