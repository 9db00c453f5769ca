/* service.c as a native program, for test/guest/service.test.ts (under ASan and UBSan). */
#include "../agent/service.h"

int main(int argc, char **argv) { return service_main(argc, argv); }
