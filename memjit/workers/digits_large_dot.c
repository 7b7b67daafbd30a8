/* digits_large_dot: the large int8 MLP digit classifier on memjit's precompiles (memjit.h). */

#include "digits_large_weights.h"
#include "digits_mlp_dot.h"
