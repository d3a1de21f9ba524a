using System.Runtime.InteropServices;

namespace Pictor.Pipelines.Distributed;

/// <summary>
/// A thin binding of MPICH's C API (libmpich.so.12, Debian's mpich 4.0.2): the eleven calls <see cref="MpiCollective"/>
/// uses, loaded at run time so that nothing needs MPI until a job runs under mpiexec. MPICH is chosen over Open MPI
/// because its handles are compile-time integers in mpi.h (below), so the binding needs no C shim; Open MPI exports
/// them as symbols (ompi_mpi_comm_world) and refuses to run as root without a flag.
/// </summary>
internal static unsafe class Mpich
{
    // Handles and constants from /usr/include/x86_64-linux-gnu/mpich/mpi.h (MPICH's ABI, stable since 3.1).
    public const int CommWorld = 0x44000000, Float = 0x4c00040a, Double = 0x4c00080b, Sum = 0x58000003,
        ErrorsReturn = 0x54000001, Success = 0, MaxErrorString = 512, ThreadFunneled = 1;
    public static readonly nint InPlace = -1;

    public static readonly string[] Libraries = ["libmpich.so.12", "libmpich.so", "libmpi.so.12"];

    public static delegate* unmanaged[Cdecl]<int*, nint*, int, int*, int> InitThread;
    public static delegate* unmanaged[Cdecl]<int*, int> Initialized;
    public static delegate* unmanaged[Cdecl]<int> Finalize;
    public static delegate* unmanaged[Cdecl]<int, int*, int> CommRank, CommSize;
    public static delegate* unmanaged[Cdecl]<int, int, int> CommSetErrhandler;
    public static delegate* unmanaged[Cdecl]<void*, void*, int, int, int, int, int> Allreduce;
    public static delegate* unmanaged[Cdecl]<void*, int, int, int, int, int> Bcast;
    public static delegate* unmanaged[Cdecl]<void*, int, int, void*, int, int, int, int> Allgather;
    public static delegate* unmanaged[Cdecl]<int, int> Barrier;
    public static delegate* unmanaged[Cdecl]<int, int, int> Abort;
    public static delegate* unmanaged[Cdecl]<int, byte*, int*, int> ErrorString;
    public static delegate* unmanaged[Cdecl]<byte*, int*, int> GetLibraryVersion;

    /// <summary>Loads libmpich and its entry points; the error names the fix when it is missing.</summary>
    public static void Load()
    {
        if (InitThread != null) return;
        nint h = 0;
        foreach (var name in Libraries) if (NativeLibrary.TryLoad(name, out h)) break;
        if (h == 0)
            throw new DllNotFoundException("this process runs under MPI but libmpich.so.12 is not installed; install "
                + "MPICH (apt-get install mpich, or bash scripts/setup.sh) and start the job with its mpiexec");
        nint F(string s) => NativeLibrary.TryGetExport(h, s, out var f) ? f
            : throw new EntryPointNotFoundException($"libmpich has no {s}; install Debian's mpich 4.x");
        InitThread = (delegate* unmanaged[Cdecl]<int*, nint*, int, int*, int>)F("MPI_Init_thread");
        Initialized = (delegate* unmanaged[Cdecl]<int*, int>)F("MPI_Initialized");
        Finalize = (delegate* unmanaged[Cdecl]<int>)F("MPI_Finalize");
        CommRank = (delegate* unmanaged[Cdecl]<int, int*, int>)F("MPI_Comm_rank");
        CommSize = (delegate* unmanaged[Cdecl]<int, int*, int>)F("MPI_Comm_size");
        CommSetErrhandler = (delegate* unmanaged[Cdecl]<int, int, int>)F("MPI_Comm_set_errhandler");
        Allreduce = (delegate* unmanaged[Cdecl]<void*, void*, int, int, int, int, int>)F("MPI_Allreduce");
        Bcast = (delegate* unmanaged[Cdecl]<void*, int, int, int, int, int>)F("MPI_Bcast");
        Allgather = (delegate* unmanaged[Cdecl]<void*, int, int, void*, int, int, int, int>)F("MPI_Allgather");
        Barrier = (delegate* unmanaged[Cdecl]<int, int>)F("MPI_Barrier");
        Abort = (delegate* unmanaged[Cdecl]<int, int, int>)F("MPI_Abort");
        ErrorString = (delegate* unmanaged[Cdecl]<int, byte*, int*, int>)F("MPI_Error_string");
        GetLibraryVersion = (delegate* unmanaged[Cdecl]<byte*, int*, int>)F("MPI_Get_library_version");
    }

    /// <summary>Throws with MPI's own text for a failed call (errors return instead of aborting: see
    /// <see cref="MpiCollective"/>).</summary>
    public static void Check(int rc, string call)
    {
        if (rc == Success) return;
        var buf = stackalloc byte[MaxErrorString]; int len = 0;
        string text = ErrorString != null && ErrorString(rc, buf, &len) == Success
            ? Marshal.PtrToStringAnsi((nint)buf, len) : $"error {rc}";
        throw new InvalidOperationException($"{call} failed: {text.Trim()} (another rank probably died; see its "
            + "output above)");
    }
}
