#ifndef BNSPEC_CGSL_SHIM_H
#define BNSPEC_CGSL_SHIM_H
// The parts of GNU GSL that BNSpec uses as an independent check of its
// reference statistics.
#include <gsl/gsl_version.h>
#include <gsl/gsl_statistics_double.h>
#endif
