/* dw_status.h - status codes shared by every dwcore kernel.
 *
 * Kernels never allocate, never print and never abort: they return one of
 * these codes and the caller (the Cython bindings) turns it into a Python
 * exception that names the argument at fault.
 */
#ifndef DW_STATUS_H
#define DW_STATUS_H

typedef enum dw_status {
    DW_OK = 0,
    DW_EINVAL = -1,       /* an argument is out of its documented range      */
    DW_ENULL = -2,        /* a required pointer is NULL                      */
    DW_ESINGULAR = -3,    /* a matrix has no inverse                         */
    DW_EUNSUPPORTED = -4, /* the CPU cannot run the requested instruction set */
} dw_status;

#endif /* DW_STATUS_H */
