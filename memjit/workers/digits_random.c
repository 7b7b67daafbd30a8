/* digits_random: the random int8 MLP digit classifier (weights from train_digits.py). */

#include "digits_random_weights.h"
#include "digits_mlp.h"
