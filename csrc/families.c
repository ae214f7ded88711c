/* families.c - the kernel families that dispatch on their own, each told of
 * every instruction-set change by dw_set_isa (dispatch.c).  A family adds
 * its selector here; unused slots stay NULL. */
#include "checksum_impl.h"
#include "dw_impl.h"

const dw_family_select_fn dw_family_selectors[4] = {dw_checksum_select, NULL, NULL, NULL};
