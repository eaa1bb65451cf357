# Core override for parallelly.
#
# source() this file as the very first statement of the training entry script,
# before any library() call. Sourcing it reads PARALLELLY_OVERRIDE_CORES and,
# when that holds a positive whole number N, makes parallelly::availableCores()
# and parallel's default mc.cores answer N. After the packages are loaded,
# source verify_cores.R and call its functions (see README.md).
#
# Every step prints one marker: a single-line JSON object on stdout, in the
# vocabulary of docs/markers.md. The file uses base R only, because loading any
# package here could load parallelly before the override is in place. All its
# functions and state live in the one environment `core_override`.

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
      if (length(x) == 0L) {
        return("{}")
      }
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
        "Core override ignored: PARALLELLY_OVERRIDE_CORES='%s' %s.",
        raw, "is not a positive whole number"
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

  environment()
})

core_override$apply_core_override()
