/* fs.c: live workspace file operations, run as `/proc/1/exe fs ...` (not as PID 1). */
#ifndef PYRO_FS_H
#define PYRO_FS_H

/* list, read, write or tar a path beneath the workspace (argv[1] is "fs"); see fs.c for formats and exit codes. */
int fs_main(int argc, char **argv);

#endif
