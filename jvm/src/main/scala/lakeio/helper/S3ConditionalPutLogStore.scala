package lakeio.helper

import java.io.IOException
import java.nio.charset.StandardCharsets.UTF_8
import java.nio.file.FileAlreadyExistsException

import io.delta.storage.HadoopFileSystemLogStore
import org.apache.hadoop.conf.Configuration
import org.apache.hadoop.fs.{FSDataOutputStream, Path}

/** Delta's log store for s3a that commits `_delta_log/N.json` with S3's conditional put
  * (`If-None-Match: *`), the arbitration delta-rs's S3 log store uses: of several writers, from
  * either engine, racing for version N, exactly one creates the file and every other gets
  * `FileAlreadyExistsException`, upon which Delta checks for conflicts and retries at N + 1.
  *
  * Delta's default for s3a (`S3SingleDriverLogStore`) checks for the file and then writes it,
  * which is only safe when one driver writes the table. The conditional create is s3a's own
  * (Hadoop 3.4.2+, `fs.option.create.conditional.overwrite`); a filesystem without it fails the
  * commit instead of overwriting another writer's.
  *
  * Set with `spark.delta.logStore.s3a.impl=lakeio.helper.S3ConditionalPutLogStore`.
  */
class S3ConditionalPutLogStore(initHadoopConf: Configuration) extends HadoopFileSystemLogStore(initHadoopConf) {

  override def write(path: Path, actions: java.util.Iterator[String], overwrite: java.lang.Boolean,
                     hadoopConf: Configuration): Unit = {
    val fs = path.getFileSystem(hadoopConf)
    // Only a commit (overwrite = false) is arbitrated; _last_checkpoint is overwritten on purpose.
    def create(): FSDataOutputStream =
      if (overwrite) fs.createFile(path).overwrite(true).build()
      else fs.createFile(path).overwrite(false).must(S3ConditionalPutLogStore.ConditionalCreate, true).build()
    try {
      val out = create()
      try while (actions.hasNext) out.write((actions.next() + "\n").getBytes(UTF_8))
      finally out.close()  // the PUT, and its precondition, happen here
    } catch {
      case error: IOException if !overwrite && S3ConditionalPutLogStore.lostTheRace(error) =>
        val lost = new FileAlreadyExistsException(path.toString, null, "another writer committed this version first")
        lost.initCause(error)
        throw lost
    }
  }

  // A PUT is visible whole or not at all.
  override def isPartialWriteVisible(path: Path, hadoopConf: Configuration): java.lang.Boolean = false
}

object S3ConditionalPutLogStore {
  /** s3a's create option that sends `If-None-Match: *`. */
  val ConditionalCreate = "fs.option.create.conditional.overwrite"

  /** s3a reports the answer 412 Precondition Failed of a conditional create as a
    * RemoteFileChangedException (a FileAlreadyExistsException where it already says so).
    */
  def lostTheRace(error: Throwable): Boolean = Iterator.iterate(error)(_.getCause).takeWhile(_ != null).exists {
    case _: FileAlreadyExistsException | _: org.apache.hadoop.fs.FileAlreadyExistsException => true
    case other => other.getClass.getName == "org.apache.hadoop.fs.s3a.RemoteFileChangedException"
  }
}
