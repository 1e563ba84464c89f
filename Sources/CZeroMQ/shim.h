// libzmq, from Debian's libzmq3-dev. Swift sees it only through the ZeroMQ module.
#ifndef CZEROMQ_SHIM_H
#define CZEROMQ_SHIM_H

#include <zmq.h>
#include <errno.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

// libzmq's own error numbers are macros built from arithmetic on ZMQ_HAUSNUMERO, which the
// Swift importer does not turn into constants; these functions hand them over instead.
static inline int czmq_eterm(void) { return ETERM; }
static inline int czmq_efsm(void) { return EFSM; }
static inline int czmq_enocompatproto(void) { return ENOCOMPATPROTO; }
static inline int czmq_emthread(void) { return EMTHREAD; }

// Names the calling thread for `top -H` and debuggers (SocketThread). Glibc declares
// pthread_setname_np only under _GNU_SOURCE, which Swift's Glibc module is built without,
// and prctl is variadic, which Swift cannot call.
#ifdef __linux__
static inline void czmq_name_current_thread(const char *name) {
    prctl(PR_SET_NAME, (unsigned long)name, 0UL, 0UL, 0UL);
}
#endif

#endif
