"""Everything of lakeio that needs a JVM, in one package.

- :mod:`~lakeio.spark.session`: the SparkSession lakeio runs on (Delta, s3a, lakeio's jars).
- :mod:`~lakeio.spark.engine`: the Spark engine (:class:`~lakeio.spark.engine.SparkEngine`).
- :mod:`~lakeio.spark.handoff`: the model boundary, Spark's results handed to Arrow without the driver.
- :mod:`~lakeio.spark.pruning`: partition pruning by the Scala helper.
- :mod:`~lakeio.spark.jvm`: the one door to the JVM (py4j), and the helper's jars.
- :mod:`~lakeio.spark.errors`: the one place Spark's and py4j's errors become lakeio's.
- :mod:`~lakeio.spark.validation`: the contract's Spark backend (one aggregate job).

Nothing here is imported by ``import lakeio``; the engine registry imports it on first use.
"""
