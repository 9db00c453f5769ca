#ifndef PYRO_CONNECT_H
#define PYRO_CONNECT_H

/* `/proc/1/exe connect PORT`: stdin/stdout joined to 127.0.0.1:PORT (published ports). */
int connect_main(int argc, char **argv);

#endif
