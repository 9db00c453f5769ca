/** Defaults that code outside the config layer needs too (the head start, before any of it loads). */

/** VMs that may be active at once, one-shot runs included (`PYRO_MAX_ACTIVE_VMS`). */
export const DEFAULT_MAX_ACTIVE_VMS = 4
