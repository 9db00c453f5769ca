/* service.c: long-running services in a workspace, run as `/proc/1/exe service ...` (not as PID 1). */
#ifndef PYRO_SERVICE_H
#define PYRO_SERVICE_H

/* start, wait for, stop, list, or read the logs of a service (argv[1] is "service"); see service.c for formats and exit codes. */
int service_main(int argc, char **argv);

#endif
