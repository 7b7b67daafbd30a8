/* digits_xl: the 64-256-10 int8 MLP digit classifier in plain C (for comparison). */

#include "digits_xl_weights.h"
#include "digits_mlp.h"
