/* dispatch.c: what a channel's frames mean: decode each and call its handler. */
#ifndef PYRO_DISPATCH_H
#define PYRO_DISPATCH_H

#include "channel.h"

/* The handler every host channel is opened with. */
extern const struct channel_handler dispatch_handler;

#endif
