# Core override for parallelly, and its verification.
#
# source() this file as the very first statement of the training entry script,
# before any library() call. Sourcing it reads PARALLELLY_OVERRIDE_CORES and,
# when that holds a positive whole number N, makes parallelly::availableCores()
# and parallel's default mc.cores answer N. After the packages are loaded, call
# core_override$verify_cores() and then core_override$select_cores().
#
# Every step prints one marker: a single-line JSON object on stdout, in the
# vocabulary of docs/markers.md. The file uses base R only, because loading any
# package here could load parallelly before the override is in place.

core_override <- local({
  state <- new.env(parent = emptyenv())
  state$override <- NA_integer_
  state$settings <- list()

  # ---- markers -------------------------------------------------------------

  # Non-ASCII and control characters are escaped so that the line stays valid
  # UTF-8 JSON whatever the locale R runs in.
  escape_code_point <- function(code) {
    if (code < 65536L) {
      return(sprintf("\\u%04x", code))
    }
    offset <- code - 65536L
    sprintf("\\u%04x\\u%04x", 55296L + offset %/% 1024L, 56320L + offset %% 1024L)
  }

  as_valid_utf8 <- function(text) {
    if (validUTF8(text)) text else iconv(text, "UTF-8", "UTF-8", sub = "?")
  }

  json_string <- function(text) {
    codes <- utf8ToInt(as_valid_utf8(text))
    pieces <- character(length(codes))
    quoted <- codes == 34L | codes == 92L
    plain <- codes >= 32L & codes <= 126L & !quoted
    pieces[plain] <- intToUtf8(codes[plain], multiple = TRUE)
    pieces[quoted] <- paste0("\\", intToUtf8(codes[quoted], multiple = TRUE))
    pieces[!plain & !quoted] <- vapply(
      codes[!plain & !quoted], escape_code_point, ""
    )
    paste0("\"", paste(pieces, collapse = ""), "\"")
  }

  json_number <- function(x) {
    if (!is.finite(x)) {
      return("null")
    }
    if (is.integer(x)) as.character(x) else sprintf("%.15g", x)
  }

  # Named lists become objects, unnamed lists and longer vectors arrays, and a
  # missing value (NULL or NA) becomes null.
  to_json <- function(x) {
    if (is.null(x)) {
      return("null")
    }
    if (is.list(x) && !is.null(names(x))) {
      fields <- vapply(x, to_json, "")
      body <- paste0(vapply(names(x), json_string, ""), ":", fields)
      return(paste0("{", paste(body, collapse = ","), "}"))
    }
    if (is.list(x) || length(x) != 1L) {
      items <- vapply(as.list(unname(x)), to_json, "")
      return(paste0("[", paste(items, collapse = ","), "]"))
    }
    if (is.na(x)) {
      return("null")
    }
    if (is.logical(x)) {
      return(if (x) "true" else "false")
    }
    if (is.numeric(x)) {
      return(json_number(unname(x)))
    }
    json_string(as.character(x))
  }

  execution_name <- function() {
    name <- Sys.getenv("CLOUD_RUN_EXECUTION", "")
    if (nzchar(name)) name else NULL
  }

  emit_marker <- function(marker, severity, message, fields = list()) {
    header <- list(
      marker = marker,
      marker_version = 1L,
      severity = severity,
      message = message,
      execution = execution_name()
    )
    cat(to_json(c(header, fields)), "\n", sep = "")
    flush(stdout())
    invisible(NULL)
  }

  # ---- the override --------------------------------------------------------

  is_parallelly_loaded <- function() {
    "parallelly" %in% loadedNamespaces()
  }

  truncate_chars <- function(text, limit) {
    codes <- utf8ToInt(as_valid_utf8(text))
    if (length(codes) <= limit) text else intToUtf8(codes[seq_len(limit)])
  }

  # Digits only: a sign, a decimal point or surrounding blanks make the value
  # invalid, so that the watchdog can apply the same rule to the job's env.
  parse_cores <- function(raw) {
    if (!grepl("^[0-9]+$", raw)) {
      return(NA_integer_)
    }
    cores <- suppressWarnings(as.integer(raw))
    if (is.na(cores) || cores < 1L) NA_integer_ else cores
  }

  parse_methods <- function(raw) trimws(strsplit(raw, ",", fixed = TRUE)[[1]])

  parse_count <- function(raw) {
    count <- suppressWarnings(as.integer(raw))
    if (is.na(count)) NULL else count
  }

  # Each setting pairs an option, which parallelly and parallel read on every
  # call, with the environment variable they copy into that option when they
  # load. Restricting the methods to "fallback" is what makes the number hold:
  # parallelly drops the fallback as soon as cpuset, nproc or mc.cores report
  # fewer cores than the system, whenever it was set.
  override_settings <- function(cores) {
    list(
      list(
        option = "parallelly.availableCores.methods",
        env = "R_PARALLELLY_AVAILABLECORES_METHODS",
        value = "fallback",
        parse = parse_methods
      ),
      list(
        option = "parallelly.availableCores.fallback",
        env = "R_PARALLELLY_AVAILABLECORES_FALLBACK",
        value = cores,
        parse = parse_count
      ),
      list(
        option = "mc.cores",
        env = "MC_CORES",
        value = cores,
        parse = parse_count
      )
    )
  }

  # What the setting was before the override: the option, or else what the
  # package would copy from the environment when it loads.
  read_prior_value <- function(setting) {
    value <- getOption(setting$option)
    if (!is.null(value)) {
      return(value)
    }
    raw <- Sys.getenv(setting$env, "")
    if (nzchar(raw)) setting$parse(raw) else NULL
  }

  env_text <- function(value) paste(value, collapse = ",")

  named <- function(value, name) structure(list(value), names = name)

  # The environment variables reach R processes started from this one, such as
  # workers of parallelly or future, which load parallelly afresh.
  apply_setting <- function(setting) {
    setting$prior <- read_prior_value(setting)
    do.call(Sys.setenv, named(env_text(setting$value), setting$env))
    options(named(setting$value, setting$option))
    setting
  }

  describe_setting <- function(setting) {
    c(
      sprintf("%s=%s", setting$env, env_text(setting$value)),
      sprintf("options(%s=%s)", setting$option, deparse(setting$value))
    )
  }

  report_configured <- function(cores, loaded, settings) {
    timing <- if (loaded) {
      paste(
        "after parallelly was already loaded: its load-time environment",
        "variables came too late, only the options take effect in this process"
      )
    } else {
      "before parallelly was loaded"
    }
    emit_marker(
      "override_configured",
      if (loaded) "WARNING" else "INFO",
      sprintf("Core override of %d cores applied %s.", cores, timing),
      list(
        override = cores,
        parallelly_loaded = loaded,
        settings = as.list(unlist(lapply(settings, describe_setting)))
      )
    )
  }

  report_skipped <- function(reason, raw, loaded) {
    message <- if (reason == "unset") {
      "No core override: PARALLELLY_OVERRIDE_CORES is not set."
    } else {
      sprintf(
        "Core override ignored: PARALLELLY_OVERRIDE_CORES='%s' is not a positive whole number.",
        raw
      )
    }
    emit_marker(
      "override_skipped",
      if (reason == "unset") "INFO" else "WARNING",
      message,
      list(reason = reason, raw = raw, parallelly_loaded = loaded)
    )
  }

  apply_core_override <- function() {
    raw <- Sys.getenv("PARALLELLY_OVERRIDE_CORES", "")
    loaded <- is_parallelly_loaded()
    if (!nzchar(raw)) {
      return(report_skipped("unset", NULL, loaded))
    }

    cores <- parse_cores(raw)
    if (is.na(cores)) {
      return(report_skipped("invalid", truncate_chars(raw, 64L), loaded))
    }

    state$override <- cores
    state$settings <- lapply(override_settings(cores), apply_setting)
    report_configured(cores, loaded, state$settings)
  }

  # ---- the verification ----------------------------------------------------

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

  read_parallelly_view <- function() {
    available <- ask_parallelly()
    unforced <- with_override_lifted(ask_parallelly())
    breakdown <- with_override_lifted(ask_parallelly("all"))
    list(
      available = if (is.null(available)) NA_integer_ else as.integer(available),
      unforced = if (is.null(unforced)) NA_integer_ else as.integer(unforced),
      methods = as.list(breakdown) %||% structure(list(), names = character(0))
    )
  }

  `%||%` <- function(x, y) if (length(x) == 0L) y else x

  find_limiting_method <- function(methods) {
    counted <- unlist(methods[setdiff(names(methods), "fallback")])
    system <- methods[["system"]]
    if (is.null(system) || length(counted) == 0L) {
      return(NA_character_)
    }
    lowest <- counted[which.min(counted)]
    if (lowest < system) names(lowest) else NA_character_
  }

  decide_status <- function(override, available, unforced) {
    if (is.na(available) || available < override) {
      return("failed")
    }
    if (is.na(unforced) || unforced < override) "forced" else "success"
  }

  plan_cores <- function(override, available, detect) {
    if (is.na(available)) {
      return(list(cores = detect, source = "detect_cores"))
    }
    if (!is.na(override) && available >= override) {
      return(list(cores = override, source = "override"))
    }
    list(cores = available, source = "parallelly")
  }

  describe_limit <- function(view, limited_by) {
    if (is.na(view$unforced)) {
      return(sprintf("parallelly failed: %s", state$parallelly_error))
    }
    limit <- if (is.na(limited_by)) {
      ""
    } else {
      sprintf(", limited by %s=%d", limited_by, view$methods[[limited_by]])
    }
    sprintf("parallelly on its own reports %d%s", view$unforced, limit)
  }

  describe_verification <- function(result, view, limited_by) {
    override <- state$override
    verdict <- switch(result$status,
      success = sprintf(
        "Core override verified: parallelly reports %d, as the override asks, and no method reports fewer",
        view$available
      ),
      forced = sprintf(
        "Core override forced: %s; the training uses the override of %d anyway",
        describe_limit(view, limited_by), override
      ),
      failed = sprintf(
        "Core override failed: parallelly::availableCores() gives %s, not the override of %d (%s); the training uses %d from %s",
        if (is.na(view$available)) "no answer" else view$available,
        override, describe_limit(view, limited_by), result$cores, result$source
      )
    )
    if (result$oversubscribed) {
      verdict <- sprintf(
        "%s. Oversubscribed: %d workers on %d allowed CPUs",
        verdict, result$cores, result$affinity
      )
    }
    paste0(verdict, ".")
  }

  verification_severity <- function(result) {
    if (result$status == "failed") {
      return("ERROR")
    }
    if (result$status == "forced" || result$oversubscribed) "WARNING" else "INFO"
  }

  # Call after the packages are loaded: anything they changed shows here.
  # Returns the cores the training should use and where they came from.
  verify_cores <- function() {
    view <- read_parallelly_view()
    detect <- as.integer(parallel::detectCores())
    affinity <- read_affinity_cores(
      Sys.getenv("CORE_OVERRIDE_PROC_STATUS", "/proc/self/status")
    )
    if (is.na(affinity) && !is.null(view$methods[["nproc"]])) {
      affinity <- as.integer(view$methods[["nproc"]])
    }
    result <- plan_cores(state$override, view$available, detect)
    result$affinity <- affinity
    result$oversubscribed <- !is.na(affinity) && result$cores > affinity
    if (is.na(state$override)) {
      return(result)
    }

    result$status <- decide_status(state$override, view$available, view$unforced)
    limited_by <- find_limiting_method(view$methods)
    emit_marker(
      "override_verified",
      verification_severity(result),
      describe_verification(result, view, limited_by),
      list(
        status = result$status,
        override = state$override,
        available_cores = view$available,
        unforced_cores = view$unforced,
        methods = view$methods,
        limited_by = limited_by,
        detect_cores = detect,
        cgroups_quota = read_cgroup_quota(
          Sys.getenv("CORE_OVERRIDE_CGROUP_ROOT", "/sys/fs/cgroup")
        ),
        affinity_cores = affinity,
        oversubscribed = result$oversubscribed
      )
    )
    result
  }

  select_cores <- function(result) {
    emit_marker(
      "cores_selected",
      if (result$oversubscribed) "WARNING" else "INFO",
      sprintf("Training will use %d cores (from %s).", result$cores, result$source),
      list(cores = result$cores, source = result$source)
    )
    result$cores
  }

  environment()
})

core_override$apply_core_override()
