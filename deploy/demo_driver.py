"""spark-submit's entry point for the lakeio demo pipeline.

lakeio itself ships as a zip on --py-files; this file is the primary resource spark-submit runs.
The session lakeio uses is the one spark-submit configured (--master, --jars, --conf), and the
environment comes from LAKEIO_ENV. Any failure propagates: spark-submit exits non-zero and the
Python traceback, naming the cause, is the end of the driver's log.

    spark-submit --master local[2] --py-files lakeio.zip --jars <jars> deploy/demo_driver.py [--engine spark]
"""

import sys

from lakeio.demo import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
