/* fs.c as a native program, for test/guest/fs.test.ts (under ASan and UBSan). */
#include "../agent/fs.h"

int main(int argc, char **argv) { return fs_main(argc, argv); }
