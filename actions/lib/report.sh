#!/usr/bin/env bash
# Runs `offsite VERB ARGS... --json`: the record shows in the log, and offsite itself sets
# the step outputs `report` (the record) and `healthy` (SPEC §6); exits with offsite's code.
exec offsite "$@" --json
