// libzmq, from Debian's libzmq3-dev. Swift sees it only through the ZeroMQ module.
#include <zmq.h>
#include <errno.h>

static inline int czmq_errno(void) { return zmq_errno(); }
