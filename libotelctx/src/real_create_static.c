/* Static archive: no interposition, libc's pthread_create is the real one. */
#include "internal.h"

otelctx__create_fn otelctx__real_create(void) { return pthread_create; }
