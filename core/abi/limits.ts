// Kernel limits the uAPI's answers depend on.

/** kvmalloc() refuses anything above INT_MAX bytes: the kernel answers ENOMEM before touching user memory. */
export const KMALLOC_MAX = 0x7fffffff;
