/*
 * asyncstreams.h - the umbrella header: include this one.
 *
 * Each module has its own header, listed here from the bottom layer up
 * (see DESIGN: each layer uses only the ones below it).
 */
#ifndef ASYNCSTREAMS_H
#define ASYNCSTREAMS_H

#include "errors.h"
#include "loop.h"
#include "future.h"
#include "task.h"
#include "sync.h"
#include "buffer.h"
#include "reader.h"
#include "transport.h"
#include "socket_transport.h"
#include "writer.h"
#include "resolve.h"
#include "connect.h"
#include "server.h"
#include "tls.h"

#endif /* ASYNCSTREAMS_H */
