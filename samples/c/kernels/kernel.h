/* Shared by every kernel file.
 *
 * A kernel is built two ways (see samples/build.sh):
 *   bare:  compiled on its own, KERNEL is empty, the function is exported;
 *   WASI:  #included by samples/c/programs/NAME.c, which defines KERNEL as
 *          `static inline` first, so clang -O2 inlines the kernel into main.
 */
#ifndef TENSORWASM_KERNEL_H
#define TENSORWASM_KERNEL_H
#ifndef KERNEL
#define KERNEL
#endif
#endif
