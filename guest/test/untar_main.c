/* untar.c as a native program, for test/guest/untar.test.ts (under ASan and UBSan). */
#include "../agent/untar.h"

int main(int argc, char **argv) { return untar_main(argc, argv); }
