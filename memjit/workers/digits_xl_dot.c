/* digits_xl_dot: the 64-256-10 int8 MLP digit classifier on memjit's precompiles (memjit.h). */

#include "digits_xl_weights.h"
#include "digits_mlp_dot.h"
