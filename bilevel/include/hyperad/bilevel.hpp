#pragma once
/// \file bilevel.hpp
/// Umbrella header of the bilevel layer: problems, inner solves, hypergradient methods
/// (ITD, AID, SID), the outer loop and the reference hypergradients. Built on hyperad/hyperad.hpp.
#include "hyperad/bilevel/aid.hpp"
#include "hyperad/bilevel/hypergradient.hpp"
#include "hyperad/bilevel/inner.hpp"
#include "hyperad/bilevel/itd.hpp"
#include "hyperad/bilevel/outer.hpp"
#include "hyperad/bilevel/problem.hpp"
#include "hyperad/bilevel/projection.hpp"
#include "hyperad/bilevel/reference.hpp"
#include "hyperad/bilevel/sampling.hpp"
#include "hyperad/bilevel/schedule.hpp"
#include "hyperad/bilevel/sid.hpp"
#include "hyperad/bilevel/state_file.hpp"
#include "hyperad/bilevel/stochastic.hpp"
#include "hyperad/hyperad.hpp"
