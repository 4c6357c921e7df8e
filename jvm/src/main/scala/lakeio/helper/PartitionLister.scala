package lakeio.helper

import java.io.FileNotFoundException
import java.nio.file.{Files, NoSuchFileException, NotDirectoryException, Paths}
import java.util.concurrent.{Callable, ExecutionException, ExecutorService, Executors, ThreadFactory}
import java.util.concurrent.atomic.AtomicInteger

import scala.collection.mutable
import scala.jdk.CollectionConverters._
import scala.util.Using

import org.apache.hadoop.conf.Configuration
import org.apache.hadoop.fs.{FileStatus, FileSystem, Path}

/** How hard the lister works.
  *
  * @param threads       concurrent listings and probes (each is a round trip on S3)
  * @param sampleSize    entries read from one directory of a level to type its column and to tell
  *                      a wide level (construct candidates) from a narrow one (list it)
  * @param maxCandidates most candidate directories constructed for one level; more are listed
  */
final case class ListingOptions(threads: Int = 16, sampleSize: Int = 100, maxCandidates: Int = 64) {
  require(threads > 0 && sampleSize > 0 && maxCandidates > 0, s"options must be positive: $this")
}

/** A partition directory: the raw values of its columns (None: the null partition) and, when asked
  * for, the data files directly in it.
  */
final case class Partition(path: Path, values: Map[String, Option[String]], files: Option[Seq[FileStatus]] = None)

/** What the lister found.
  *
  * @param partitions the partition directories a read needs, in listing order
  * @param types      each partition column's type, inferred from the directory names seen
  * @param total      how many partitions the table has, when the walk saw every one of them
  * @param schemaPath when `paths` is empty: one partition of the table to read its schema from
  * @param requests   file system listings and probes made
  * @param steps      how each level was found, one line per level
  */
final case class Selection(partitions: Seq[Partition], types: Map[String, ColumnType], total: Option[Int],
                           schemaPath: Option[Path], requests: Int, steps: Seq[String]) {
  def paths: Seq[Path] = partitions.map(_.path)
}

/** The directory layout disagrees with the partition columns, or the root is not a directory. */
final class LayoutError(message: String) extends Exception(message)

private object PartitionLister {
  private val samplers = java.util.Collections.synchronizedMap(new java.util.WeakHashMap[FileSystem, FileSystem]())

  /** `fs` fetching listing pages of `pageSize` entries. S3A fetches `fs.s3a.paging.maximum` (5,000)
    * per request, a page far larger (and slower to answer) than a sample needs; one such instance
    * per file system and page size is kept, as Hadoop keeps `fs` itself.
    */
  def sampling(fs: FileSystem, pageSize: Int): FileSystem =
    if (fs.getScheme != "s3a") fs
    else samplers.synchronized {
      Option(samplers.get(fs)).filter(_.getConf.getInt("fs.s3a.paging.maximum", 0) == pageSize).getOrElse {
        val conf = new Configuration(fs.getConf)
        conf.setInt("fs.s3a.paging.maximum", pageSize)
        val sampler = FileSystem.newInstance(fs.getUri, conf)
        Option(samplers.put(fs, sampler)).foreach(_.close()) // one of another page size
        sampler
      }
    }

  final case class Entry(name: String, isDirectory: Boolean)
  final case class Sample(parent: Partition, entries: Seq[Entry], truncated: Boolean)
}

/** Finds the partition directories of a hive-partitioned table that a predicate may need, level by
  * level, with Hadoop FileSystem calls made concurrently.
  *
  * At each level one directory is sampled (a bounded read of its first entries). Where the level
  * is wide (the sample did not exhaust the directory), the column's matching values are few and
  * enumerable (`=`, `IN`, bounded ranges on integers and dates, `IS NULL`), and the sampled names
  * are spelled as every writer spells them, the matching directories are constructed and probed
  * instead of listing the parent: the cost then follows the matches, not the table. Everywhere
  * else the parents are listed. Either way a partition is dropped only when the predicate cannot
  * be true on it; what the helper cannot evaluate keeps the partition.
  *
  * Asked for files, it also lists the data files of each selected partition, so the read need not
  * list them again; on S3 the probe of a constructed directory is that listing.
  */
final class PartitionLister(fs: FileSystem, table: Path, columns: Seq[String], predicate: Predicate,
                            options: ListingOptions = ListingOptions()) {

  import PartitionLister._

  private val filter = Predicate.normalized(predicate)
  private val types = mutable.Map.empty[String, ColumnType]
  private val valued = mutable.Set.empty[String] // columns with a non-null value seen
  private val requests = new AtomicInteger()
  private val local = fs.getScheme == "file"
  private val root = fs.makeQualified(table)

  require(columns.nonEmpty, "a partitioned table has at least one partition column")

  def select(withFiles: Boolean = false): Selection = {
    val pool = Executors.newFixedThreadPool(options.threads, daemonThreads)
    try {
      if (withFiles && !local && (Predicate.columns(filter) intersect columns.toSet).isEmpty) return flat()
      var parents = Seq(Partition(root, Map.empty))
      var complete = true // every partition of the table is among `parents`
      var total = Option.empty[Int]
      val steps = Seq.newBuilder[String]
      for ((column, level) <- columns.zipWithIndex) {
        val leaf = level == columns.size - 1
        val (found, constructed, step) = children(parents, column, leaf, pool)
        val kept = found.filter(p => Truth.canBeTrue(Predicate.evaluate(filter, p.values, typeOf)))
        complete = complete && !constructed && (leaf || kept.size == found.size)
        if (leaf && complete) total = Some(found.size)
        steps += s"$step; ${kept.size} kept"
        parents = kept
      }
      for ((column, level) <- columns.zipWithIndex if !valued(column)) types(column) = typeFromElsewhere(level)
      val schemaPath = if (parents.isEmpty) { checkRoot(); firstPartition() } else None
      if (withFiles) parents = parallel(pool, parents)(p => if (p.files.isDefined) p else p.copy(files = Some(filesIn(p.path))))
      Selection(parents, columns.map(c => c -> typeOf(c)).toMap, total, schemaPath,
                requests.get, steps.result())
    } finally pool.shutdownNow()
  }

  /** Every partition with its files, from one recursive listing of the root: for a read that
    * prunes nothing off the local disk, where S3A lists a whole tree in pages of a thousand files
    * rather than a request per directory (what Spark's own listing of s3a does).
    */
  private def flat(): Selection = {
    val found = try {
      val files = fs.listFiles(root, true)
      Iterator.continually(files).takeWhile(_.hasNext).map(_.next()).toVector
    } catch { case _: FileNotFoundException => throw new FileNotFoundException(s"table root $root does not exist") }
    requests.addAndGet(1 + found.size / 1000) // one paged listing
    if (found.size == 1 && found.head.getPath == root) throw new LayoutError(s"table root $root is a file, not a directory")
    val depth = root.depth
    val visible = found.filterNot { file =>
      Iterator.iterate(file.getPath)(_.getParent).take(file.getPath.depth - depth).exists(p => PartitionValues.isHidden(p.getName))
    }
    val byDirectory = visible.groupBy(_.getPath.getParent)
    val partitions = visible.map(_.getPath.getParent).distinct.map { dir =>
      val names = Iterator.iterate(dir)(_.getParent).take(dir.depth - depth).map(_.getName).toVector.reverse
      val values = columns.zipAll(names, "", "").map { case (column, name) =>
        PartitionValues.parse(name).filter(_._1 == column).getOrElse(throw new LayoutError(
          s"${byDirectory(dir).head.getPath} is not under '${columns.mkString("=.../")}=...' directories: the " +
          s"partition columns are ${columns.mkString(", ")} (in this order)"))
      }.toMap
      Partition(dir, values, Some(dataFiles(byDirectory(dir))))
    }
    for (column <- columns) infer(column, partitions.map(_.values(column)))
    if (partitions.isEmpty) checkRoot()
    Selection(partitions, columns.map(c => c -> typeOf(c)).toMap, Some(partitions.size), None, requests.get,
              Seq(s"one recursive listing: ${found.size} files in ${partitions.size} partitions"))
  }

  /** Why nothing was found, when the reason is the root itself (the walk does not probe it first:
    * on S3 that would cost two requests on every read).
    */
  private def checkRoot(): Unit = {
    val status = try { requests.incrementAndGet(); fs.getFileStatus(root) }
    catch { case _: FileNotFoundException => throw new FileNotFoundException(s"table root $root does not exist") }
    if (!status.isDirectory) throw new LayoutError(s"table root $root is a file, not a directory")
  }

  private def typeOf(column: String): ColumnType = types.getOrElse(column, ColumnType.Unknown)

  private def infer(column: String, values: Seq[Option[String]]): Unit = {
    types(column) = ColumnType.infer(values)
    if (values.exists(_.isDefined)) valued += column
  }

  /** The directories of `column` under `parents`: constructed or listed. */
  private def children(parents: Seq[Partition], column: String, leaf: Boolean,
                       pool: ExecutorService): (Seq[Partition], Boolean, String) = {
    val sample = sampleOf(parents)
    val sampled = sample.toSeq.flatMap(s => values(s.entries.map(_.name), column))
    infer(column, sampled)
    val columnType = typeOf(column)
    val live = sample.map(s => parents.dropWhile(_ != s.parent)).getOrElse(Nil)

    val candidates = if (sample.exists(_.truncated) && sampled.flatten.forall(PartitionValues.isCanonical(_, columnType)))
      construct(live, column, columnType) else None
    candidates match {
      case Some(made) =>
        // Directories of upper levels are probed by the next level's listing or probes.
        val found = if (leaf) parallel(pool, made)(probe).flatten else made
        infer(column, sampled ++ found.map(_.values(column)))
        (found, true, s"$column: ${made.size} constructed of ${live.size} parent(s), ${if (leaf) "probed" else "unprobed"}")
      case None =>
        val listed = parallel(pool, live) { parent =>
          val entries = sample.filter(s => s.parent == parent && !s.truncated).map(_.entries).getOrElse(list(parent.path))
          entries.filter(_.isDirectory).filterNot(e => PartitionValues.isHidden(e.name)).map { entry =>
            val (name, value) = PartitionValues.parse(entry.name).getOrElse(unexpected(parent, entry, column))
            if (name != column) unexpected(parent, entry, column)
            Partition(new Path(parent.path, entry.name), parent.values + (column -> value))
          }
        }.flatten
        infer(column, sampled ++ listed.map(_.values(column)))
        (listed, false, s"$column: ${live.size} parent(s) listed, ${listed.size} found")
    }
  }

  /** Candidate directories, when every parent's matching values are few, known and writable. */
  private def construct(parents: Seq[Partition], column: String, columnType: ColumnType): Option[Seq[Partition]] = {
    if (columnType == ColumnType.Unknown) return None
    val perParent = parents.map { parent =>
      Predicate.domain(filter, column, columnType, parent.values, typeOf, options.maxCandidates)
        .finite(options.maxCandidates).map(keys => parent -> keys.toSeq.map(_.map(PartitionValues.render(_, columnType))))
    }
    if (perParent.exists(_.isEmpty)) return None
    val made = for ((parent, raws) <- perParent.flatten; raw <- raws)
      yield Partition(new Path(parent.path, PartitionValues.directoryName(column, raw)), parent.values + (column -> raw))
    val writable = made.forall(_.values(column).forall(PartitionValues.isCanonical(_, columnType)))
    if (made.size <= options.maxCandidates && writable) Some(made) else None
  }

  /** The first entries of the first parent that exists; parents before it do not exist. */
  private def sampleOf(parents: Seq[Partition]): Option[Sample] =
    parents.iterator.map(p => sample(p)).collectFirst { case Some(s) => s }

  private def sample(parent: Partition): Option[Sample] = {
    val limit = options.sampleSize
    requests.incrementAndGet()
    try {
      val entries = if (local) {
        // Hadoop's local listing stats every entry of the directory; a directory stream reads only
        // the entries taken, so sampling a wide local level stays as cheap as on S3.
        Using.resource(Files.newDirectoryStream(Paths.get(parent.path.toUri))) { stream =>
          stream.iterator().asScala.take(limit + 1).map(p => Entry(p.getFileName.toString, Files.isDirectory(p))).toVector
        }
      } else {
        val iterator = PartitionLister.sampling(fs, limit + 1).listStatusIterator(parent.path)
        Iterator.continually(iterator).takeWhile(_.hasNext).take(limit + 1)
          .map(_.next()).map(s => Entry(s.getPath.getName, s.isDirectory)).toVector
      }
      Some(Sample(parent, entries.take(limit), entries.size > limit))
    } catch {
      case _: FileNotFoundException | _: NoSuchFileException | _: NotDirectoryException => None
    }
  }

  private def list(dir: Path): Seq[Entry] = {
    requests.incrementAndGet()
    try fs.listStatus(dir).toSeq.map(s => Entry(s.getPath.getName, s.isDirectory))
    catch { case _: FileNotFoundException => Nil }
  }

  /** The partition if its constructed directory exists. Off the local disk this lists the directory
    * instead of asking for its status: S3A answers a listing of a non-empty directory with one
    * request, a status with two, and the listing gives the partition's files as well.
    */
  private def probe(partition: Partition): Option[Partition] = {
    requests.incrementAndGet()
    try {
      if (local) Some(partition).filter(p => fs.getFileStatus(p.path).isDirectory)
      else {
        val entries = listing(partition.path)
        // A file named like the directory lists as itself.
        if (entries.size == 1 && entries.head.isFile && entries.head.getPath.getName == partition.path.getName) None
        else Some(partition.copy(files = Some(dataFiles(entries))))
      }
    } catch { case _: FileNotFoundException => None }
  }

  /** The data files directly in a partition directory (none if it is gone). */
  private def filesIn(dir: Path): Seq[FileStatus] = {
    requests.incrementAndGet()
    try dataFiles(listing(dir)) catch { case _: FileNotFoundException => Nil }
  }

  private def listing(dir: Path): Seq[FileStatus] = {
    val entries = fs.listStatusIterator(dir)
    Iterator.continually(entries).takeWhile(_.hasNext).map(_.next()).toVector
  }

  private def dataFiles(entries: Seq[FileStatus]): Seq[FileStatus] = entries.filter(PartitionValues.isDataFile)

  /** The raw values of `column` among directory names (the sample may hold other names). */
  private def values(names: Seq[String], column: String): Seq[Option[String]] =
    names.filterNot(PartitionValues.isHidden).flatMap(PartitionValues.parse).collect { case (`column`, v) => v }

  /** The partition directories of `column` in `dir`, with their raw values. */
  private def partitionsIn(dir: Path, column: String): Seq[(Path, Option[String])] = {
    val entries = sample(Partition(dir, Map.empty)) match {
      case Some(s) if !s.truncated => s.entries
      case Some(_) => list(dir)
      case None => Nil
    }
    entries.filter(_.isDirectory).flatMap { e =>
      PartitionValues.parse(e.name).collect { case (`column`, value) => (new Path(dir, e.name), value) }
    }
  }

  /** Depth-first from the root: the first directory of partitions at `level` that `accept` takes. */
  private def firstAt[A](level: Int)(accept: Seq[(Path, Option[String])] => Option[A]): Option[A] = {
    def visit(dir: Path, depth: Int): Option[A] = {
      val partitions = partitionsIn(dir, columns(depth))
      if (depth == level) accept(partitions)
      else partitions.iterator.map(p => visit(p._1, depth + 1)).collectFirst { case Some(found) => found }
    }
    visit(root, 0)
  }

  /** Any one leaf partition of the table. */
  private def firstPartition(): Option[Path] = firstAt(columns.size - 1)(_.headOption.map(_._1))

  /** A column whose partitions seen so far are all null is typed from the first non-null values
    * found elsewhere in the table, so a read of null partitions gets the table's type, not Spark's
    * guess from nulls alone.
    */
  private def typeFromElsewhere(level: Int): ColumnType =
    firstAt(level)(found => Some(found.map(_._2)).filter(_.exists(_.isDefined)))
      .map(ColumnType.infer).getOrElse(ColumnType.Unknown)

  private def unexpected(parent: Partition, entry: Entry, column: String): Nothing =
    throw new LayoutError(
      s"${new Path(parent.path, entry.name)} is not a '$column=' directory: the partition columns are " +
      s"${columns.mkString(", ")} (in this order), so every directory at this level should be '$column=<value>'")

  private def parallel[A, B](pool: ExecutorService, items: Seq[A])(f: A => B): Seq[B] =
    if (items.size <= 1) items.map(f)
    else items.map(item => pool.submit(new Callable[B] { def call(): B = f(item) })).map { future =>
      try future.get() catch { case e: ExecutionException => throw e.getCause }
    }

  private val daemonThreads: ThreadFactory = { runnable =>
    val thread = new Thread(runnable, "lakeio-partition-lister")
    thread.setDaemon(true)
    thread
  }
}
