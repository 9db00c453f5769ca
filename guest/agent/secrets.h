#ifndef PYRO_SECRETS_H
#define PYRO_SECRETS_H

/* `/proc/1/exe secrets DIR`: a workspace's secrets into a tmpfs at DIR. */
int secrets_main(int argc, char **argv);

#endif
