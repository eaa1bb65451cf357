# Verification of the core override, for after the packages are loaded.
#
# source() this file after core_override.R and the library() calls, then:
#
#   verification <- core_override$verify_cores()
#   cores <- core_override$select_cores(verification)
#
# verify_cores() compares what parallelly answers now with what it would answer
# without the override and with what the process may really run on, and prints
# the override_verified marker; select_cores() prints cores_selected.
#
# Two environment variables move the files it reads, so that tests can use
# fixtures: CORE_OVERRIDE_CGROUP_ROOT (default /sys/fs/cgroup) and
# CORE_OVERRIDE_PROC_STATUS (default /proc/self/status).

if (!exists("core_override") || !is.environment(core_override)) {
  stop(
    "source core_override.R first, as the entry script's first statement",
    call. = FALSE
  )
}

local(envir = core_override, {
  read_first_line <- function(path) {
    line <- tryCatch(
      readLines(path, n = 1L, warn = FALSE),
      error = function(e) character(0),
      warning = function(w) character(0)
    )
    if (length(line) == 1L) trimws(line) else NA_character_
  }

  read_number <- function(path) suppressWarnings(as.numeric(read_first_line(path)))

  quota_cores <- function(quota, period) {
    if (is.na(quota) || is.na(period) || quota <= 0 || period <= 0) {
      return(NA_real_)
    }
    round(quota / period, 6L)
  }

  # cgroups v2 writes "max 100000" when unlimited, v1 a quota of -1.
  read_cgroup_quota <- function(root) {
    cpu_max <- read_first_line(file.path(root, "cpu.max"))
    if (!is.na(cpu_max)) {
      parts <- strsplit(cpu_max, "[[:space:]]+")[[1]]
      numbers <- suppressWarnings(as.numeric(parts))
      return(quota_cores(numbers[1], numbers[2]))
    }
    for (dir in file.path(root, c("cpu", "cpu,cpuacct", "cpuacct,cpu"))) {
      quota <- read_number(file.path(dir, "cpu.cfs_quota_us"))
      period <- read_number(file.path(dir, "cpu.cfs_period_us"))
      if (!is.na(quota) && !is.na(period)) {
        return(quota_cores(quota, period))
      }
    }
    NA_real_
  }

  # "0-3,8" -> 5
  count_cpu_list <- function(text) {
    ranges <- strsplit(strsplit(text, ",", fixed = TRUE)[[1]], "-", fixed = TRUE)
    sizes <- vapply(ranges, function(bounds) {
      bounds <- suppressWarnings(as.integer(bounds))
      if (length(bounds) == 1L) 1L else bounds[2] - bounds[1] + 1L
    }, 0L)
    if (length(sizes) == 0L || anyNA(sizes)) NA_integer_ else sum(sizes)
  }

  read_affinity_cores <- function(status_path) {
    lines <- tryCatch(
      readLines(status_path, warn = FALSE),
      error = function(e) character(0),
      warning = function(w) character(0)
    )
    line <- grep("^Cpus_allowed_list:", lines, value = TRUE)
    if (length(line) != 1L) {
      return(NA_integer_)
    }
    count_cpu_list(trimws(sub("^Cpus_allowed_list:", "", line)))
  }

  # Runs `expr` with the override's options back at their prior values, unless
  # something changed them after the override: then that value is the truth.
  with_override_lifted <- function(expr) {
    lifted <- lapply(state$settings, function(setting) {
      current <- getOption(setting$option)
      if (identical(current, setting$value)) setting$prior else current
    })
    names(lifted) <- vapply(state$settings, `[[`, "", "option")
    saved <- options(lifted)
    on.exit(options(saved))
    expr
  }

  ask_parallelly <- function(which = "min") {
    tryCatch(
      parallelly::availableCores(which = which),
      error = function(e) {
        state$parallelly_error <- conditionMessage(e)
        NULL
      }
    )
  }

  `%||%` <- function(x, y) if (length(x) == 0L) y else x

  # Two views: the answer every package gets now, with the override in place,
  # and parallelly's own report without it, which the marker publishes.
  read_parallelly_view <- function() {
    answer <- ask_parallelly()
    own <- with_override_lifted(ask_parallelly())
    breakdown <- with_override_lifted(ask_parallelly("all"))
    list(
      answer = as.integer(answer %||% NA_integer_),
      own = as.integer(own %||% NA_integer_),
      methods = as.list(breakdown) %||% structure(list(), names = character(0)),
      detect = as.integer(parallel::detectCores())
    )
  }

  # parallelly's nproc method reads the same affinity mask, through coreutils.
  read_affinity <- function(methods) {
    affinity <- read_affinity_cores(
      Sys.getenv("CORE_OVERRIDE_PROC_STATUS", "/proc/self/status")
    )
    if (is.na(affinity) && !is.null(methods[["nproc"]])) {
      affinity <- as.integer(methods[["nproc"]])
    }
    affinity
  }

  find_limiting_method <- function(methods) {
    counted <- unlist(methods[setdiff(names(methods), "fallback")])
    system <- methods[["system"]]
    if (is.null(system) || length(counted) == 0L) {
      return(NA_character_)
    }
    lowest <- counted[which.min(counted)]
    if (lowest < system) names(lowest) else NA_character_
  }

  # `answer` is what parallelly answers with the override in place, `own` what
  # it reports without the override's settings.
  decide_status <- function(override, answer, own) {
    if (is.na(answer) || answer < override) {
      return("failed")
    }
    if (is.na(own) || own < override) "forced" else "success"
  }

  plan_cores <- function(override, view) {
    if (is.na(view$answer)) {
      return(list(cores = view$detect, source = "detect_cores"))
    }
    if (!is.na(override) && view$answer >= override) {
      return(list(cores = override, source = "override"))
    }
    list(cores = view$answer, source = "parallelly")
  }

  describe_own_report <- function(view, limited_by) {
    if (is.na(view$own)) {
      return(sprintf("parallelly failed: %s", state$parallelly_error))
    }
    limit <- if (is.na(limited_by)) {
      ""
    } else {
      sprintf(", limited by %s=%d", limited_by, view$methods[[limited_by]])
    }
    sprintf("on its own parallelly reports %d%s", view$own, limit)
  }

  describe_verification <- function(result, view, limited_by) {
    override <- state$override
    limit <- describe_own_report(view, limited_by)
    text <- switch(result$status,
      success = sprintf(
        "Core override verified: parallelly answers %d; %s",
        override, limit
      ),
      forced = sprintf(
        "Core override forced: %s; the training uses the override of %d anyway",
        limit, override
      ),
      failed = sprintf(
        "Core override failed: parallelly answers %s instead of %d; %s; %s",
        if (is.na(view$answer)) "no number" else view$answer,
        override, limit,
        sprintf("the training uses %d from %s", result$cores, result$source)
      )
    )
    if (result$oversubscribed) {
      text <- sprintf(
        "%s. Oversubscribed: %d workers on %d allowed CPUs",
        text, result$cores, result$affinity
      )
    }
    paste0(text, ".")
  }

  verification_severity <- function(result) {
    if (result$status == "failed") {
      return("ERROR")
    }
    if (result$status == "forced" || result$oversubscribed) "WARNING" else "INFO"
  }

  report_verified <- function(result, view) {
    limited_by <- find_limiting_method(view$methods)
    emit_marker(
      "override_verified",
      verification_severity(result),
      describe_verification(result, view, limited_by),
      list(
        status = result$status,
        override = state$override,
        available_cores = view$own,
        methods = view$methods,
        limited_by = limited_by,
        detect_cores = view$detect,
        cgroups_quota = read_cgroup_quota(
          Sys.getenv("CORE_OVERRIDE_CGROUP_ROOT", "/sys/fs/cgroup")
        ),
        affinity_cores = result$affinity,
        oversubscribed = result$oversubscribed
      )
    )
  }

  # Returns the cores the training should use, where they came from and, when
  # an override is configured, the verification status.
  verify_cores <- function() {
    view <- read_parallelly_view()
    result <- plan_cores(state$override, view)
    result$affinity <- read_affinity(view$methods)
    result$oversubscribed <- !is.na(result$affinity) &&
      result$cores > result$affinity

    if (!is.na(state$override)) {
      result$status <- decide_status(state$override, view$answer, view$own)
      report_verified(result, view)
    }
    result
  }

  select_cores <- function(result) {
    message <- sprintf(
      "Training will use %d cores (from %s)", result$cores, result$source
    )
    if (result$oversubscribed) {
      message <- sprintf(
        "%s, more than the %d CPUs this process may run on: oversubscribed",
        message, result$affinity
      )
    }
    emit_marker(
      "cores_selected",
      if (result$oversubscribed) "WARNING" else "INFO",
      paste0(message, "."),
      list(cores = result$cores, source = result$source)
    )
    result$cores
  }
})
