"""`radview pacs find|get|store SERVER ...`: query, retrieve and store studies on a PACS (DIMSE or DICOMweb)."""

from __future__ import annotations

import argparse
import json
import logging
import sys

NAME = "pacs"
HELP = "find, retrieve (get) and store studies on a PACS: dicom://AET@HOST:PORT (DIMSE) or http(s)://HOST:PORT/PATH"


def add_arguments(parser) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("server", metavar="SERVER",
                        help="dicom://AET@HOST:PORT (DIMSE) or http(s)://HOST:PORT/PATH (DICOMweb root)")
    common.add_argument("--aet", default="RADVIEW", help="radview's own (calling) AE title (default RADVIEW)")
    common.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the server (default 10)")
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks and the protocol's debug log")
    sub = parser.add_subparsers(dest="action", required=True, metavar="{find,get,store}")
    find = sub.add_parser("find", parents=[common], help="list the matching studies with their series")
    find.add_argument("--patient-id", default="", help="PatientID")
    find.add_argument("--patient-name", default="", help="PatientName, DICOM wildcards * and ? allowed")
    find.add_argument("--modality", default="", help="a modality of the study (ModalitiesInStudy), e.g. CT")
    find.add_argument("--study-date", default="", help="YYYYMMDD or a range YYYYMMDD-YYYYMMDD")
    find.add_argument("--json", action="store_true", help="print a JSON list of studies, each with its series")
    get = sub.add_parser("get", parents=[common], help="retrieve a study or one series into a folder, as stored")
    get.add_argument("--study", required=True, help="StudyInstanceUID")
    get.add_argument("--series", help="only this SeriesInstanceUID")
    get.add_argument("--out", required=True, help="output folder: files land in OUT/<SeriesInstanceUID>/")
    get.add_argument("--move-port", type=int, metavar="PORT",
                     help="DIMSE: retrieve with C-MOVE to radview's storage SCP on PORT (the server must know "
                          "--aet at this host and PORT) instead of C-GET")
    store = sub.add_parser("store", parents=[common], help="send DICOM files (or folders of them) to the server")
    store.add_argument("paths", nargs="+", metavar="FILE|DIR", help="DICOM files or folders (walked recursively)")


def run(args) -> int:
    from viewer.pacs import connect

    if not getattr(args, "debug", False):
        logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)  # its errors become our one-line messages
    client = connect(args.server, aet=args.aet, timeout=args.timeout, move_port=getattr(args, "move_port", None))
    return {"find": _find, "get": _get, "store": _store}[args.action](client, args)


def _find(client, args) -> int:
    from viewer.pacs import StudyQuery

    query = StudyQuery(args.patient_id, args.patient_name, args.modality, args.study_date)
    studies = client.find(query)
    if args.json:
        print(json.dumps([s.to_json() for s in studies], indent=1))
        return 0
    for s in studies:
        print(f"{s.StudyInstanceUID}  {s.PatientID or '-'}  {s.PatientName or '-'}  {s.StudyDate or '-'}  "
              f"{'/'.join(s.ModalitiesInStudy) or '-'}  {s.StudyDescription}")
        for se in s.series:
            n = "?" if se.NumberOfSeriesRelatedInstances is None else se.NumberOfSeriesRelatedInstances
            print(f"    {se.SeriesInstanceUID}  {se.Modality or '-'}  {n} instances  {se.SeriesDescription}")
    print(f"{len(studies)} studies", file=sys.stderr)
    return 0


def _get(client, args) -> int:
    from viewer.commands.progress_bar import terminal_job

    with terminal_job() as (bar, cancel):
        result = client.retrieve(args.study, args.out, series_uid=args.series,
                                 progress=bar if bar.tty else _StepReport(), cancel=cancel)
    print(f"retrieved {len(result.files)} instances of {args.study} into "
          f"{', '.join(str(f) for f in result.series_folders)}")
    return 0


def _store(client, args) -> int:
    from viewer.commands.progress_bar import terminal_job

    with terminal_job() as (_bar, cancel):
        statuses = client.store(args.paths, cancel=cancel, on_status=lambda s: print(s.line(), flush=True))
    failed = [s for s in statuses if not s.ok]
    stored = sum(s.state in ("stored", "warning") for s in statuses)
    summary = f"{stored} stored, {len(failed)} failed, {sum(s.state == 'skipped' for s in statuses)} skipped"
    if failed:
        print(f"radview: error: {len(failed)} of {stored + len(failed)} instances not stored ({summary})",
              file=sys.stderr)
        return 1
    print(summary, file=sys.stderr)
    return 0


class _StepReport:
    """Progress for a stderr that is not a terminal: one line per 10 % step (a bar would need a terminal)."""

    def __init__(self):
        self.step = -1

    def __call__(self, fraction: float, message: str) -> None:
        step = int(fraction * 10)
        if step > self.step:
            self.step = step
            print(f"radview: {message}", file=sys.stderr, flush=True)
