# Entry script of the training image, reduced to its skeleton. The order of
# the steps is the point: core override, packages, verification, core
# selection, training.
#
#   Rscript r/run_all.R                      train with Robyn
#   Rscript r/run_all.R --preflight          stop after the core selection
#   Rscript r/run_all.R --simulate-training  a small parallel workload instead
#                                            of Robyn, with the same markers

# These two statements must stay first: the override has to be in place before
# any package can load parallelly, so only base R runs before it. The directory
# of this script comes from Rscript's --file= argument.
r_dir <- local({
  script <- grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE)
  if (length(script) == 1L) dirname(sub("^--file=", "", script)) else "r"
})
source(file.path(r_dir, "core_override.R"))

usage <- "usage: Rscript run_all.R [--preflight] [--simulate-training]"

parse_flags <- function(args) {
  unknown <- setdiff(args, c("--preflight", "--simulate-training"))
  if (length(unknown) > 0L) {
    stop(sprintf("unknown argument %s; %s", unknown[1], usage), call. = FALSE)
  }
  list(
    preflight = "--preflight" %in% args,
    simulate = "--simulate-training" %in% args
  )
}

# Robyn is loaded whenever it is installed, so that the verification sees
# whatever it and its dependencies change; only real training requires it.
load_packages <- function(flags) {
  loadNamespace("parallelly")
  if (requireNamespace("Robyn", quietly = TRUE)) {
    suppressPackageStartupMessages(library(Robyn))
  } else if (!flags$preflight && !flags$simulate) {
    stop(
      "Robyn is not installed. Install it in the image, or run with ",
      "--preflight (core checks only) or --simulate-training (a small ",
      "parallel workload instead of Robyn).",
      call. = FALSE
    )
  }
}

# The image's own model code goes here: it builds InputCollect with
# Robyn::robyn_inputs() and must hand the selected cores to robyn_run(),
# whose default would be parallel::detectCores() - 1.
train_robyn <- function(cores) {
  path <- Sys.getenv("ROBYN_INPUT_COLLECT", "")
  if (!nzchar(path)) {
    stop("ROBYN_INPUT_COLLECT is not set: point it at an RDS file of robyn_inputs()")
  }
  Robyn::robyn_run(InputCollect = readRDS(path), cores = cores, outputs = FALSE)
}

spin_cpu <- function(task) sum(sqrt(seq_len(2e6))) + task

# parallel::mclapply() applies the same core-count check as Robyn's parallel
# backend, so _R_CHECK_LIMIT_CORES_ makes it reject the cores the same way.
simulate_training <- function(cores) {
  results <- parallel::mclapply(seq_len(cores), spin_cpu, mc.cores = cores)
  failed <- vapply(results, inherits, NA, what = "try-error")
  if (any(failed)) {
    stop(sprintf("%d of %d simulated workers failed", sum(failed), cores))
  }
}

is_core_count_rejection <- function(error) {
  grepl("simultaneous processes spawned|\\bcores?\\b", error, ignore.case = TRUE)
}

report_finished <- function(cores, attempt, error, duration, will_retry) {
  failed <- !is.null(error)
  severity <- if (!failed) "INFO" else if (will_retry) "WARNING" else "ERROR"
  message <- if (failed) {
    retry <- if (will_retry) sprintf("; retrying with %d cores", cores - 1L) else ""
    sprintf("Training attempt %d on %d cores failed after %.2f s: %s%s",
            attempt, cores, duration, error, retry)
  } else {
    sprintf("Training attempt %d on %d cores finished in %.2f s.",
            attempt, cores, duration)
  }
  core_override$emit_marker("training_finished", severity, message, list(
    cores = cores,
    attempt = attempt,
    status = if (failed) "error" else "ok",
    duration_s = round(duration, 3L),
    error = if (failed) core_override$truncate_chars(error, 200L) else NULL
  ))
}

run_attempt <- function(train, cores, attempt, retries_left) {
  core_override$emit_marker(
    "training_started", "INFO",
    sprintf("Training attempt %d started on %d cores.", attempt, cores),
    list(cores = cores, attempt = attempt)
  )
  started <- proc.time()[["elapsed"]]
  error <- tryCatch(
    {
      train(cores)
      NULL
    },
    error = function(e) conditionMessage(e)
  )
  duration <- proc.time()[["elapsed"]] - started

  will_retry <- !is.null(error) && retries_left > 0L && cores > 1L &&
    is_core_count_rejection(error)
  report_finished(cores, attempt, error, duration, will_retry)
  list(ok = is.null(error), will_retry = will_retry)
}

# One retry, one core less: Robyn rejects a core count above what its
# parallel backend accepts, and the watchdog tolerates exactly one core less.
train_with_retry <- function(train, cores) {
  outcome <- run_attempt(train, cores, attempt = 1L, retries_left = 1L)
  if (outcome$will_retry) {
    outcome <- run_attempt(train, cores - 1L, attempt = 2L, retries_left = 0L)
  }
  outcome$ok
}

# Returns the exit status: a preflight fails when the override failed.
main <- function(args) {
  flags <- parse_flags(args)
  load_packages(flags)
  source(file.path(r_dir, "verify_cores.R"))

  verification <- core_override$verify_cores()
  cores <- core_override$select_cores(verification)
  if (flags$preflight) {
    return(if (identical(verification$status, "failed")) 1L else 0L)
  }

  train <- if (flags$simulate) simulate_training else train_robyn
  if (train_with_retry(train, cores)) 0L else 1L
}

# main() runs as its own top-level call so that R still prints the warnings it
# deferred (such as parallelly's cgroups-quota warning) before the exit.
exit_status <- main(commandArgs(trailingOnly = TRUE))
if (exit_status != 0L) {
  quit(status = exit_status)
}
