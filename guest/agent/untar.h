/* untar.c: the import extractor, run as `/proc/1/exe untar DEST` (not as PID 1). */
#ifndef PYRO_UNTAR_H
#define PYRO_UNTAR_H

/* Unpacks the stream on stdin into argv[2]; exits 1 with "pyro-untar: ENTRY: why" on stderr. */
int untar_main(int argc, char **argv);

#endif
