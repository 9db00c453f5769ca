/* sysfile.c: short writes to the kernel's control files (cgroup.procs, cgroup.kill). */
#ifndef PYRO_SYSFILE_H
#define PYRO_SYSFILE_H

/* Write `text` to the existing file `path` in one write(); 0, or -1 with errno. Uses
 * only system calls, so a vfork child may call it. */
int write_sysfile(const char *path, const char *text);

#endif
