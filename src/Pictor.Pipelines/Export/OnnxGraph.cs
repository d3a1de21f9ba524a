using Google.Protobuf;
using Pictor.Engine;
using Pictor.Pipelines.Export.Onnx;

namespace Pictor.Pipelines.Export;

/// <summary>
/// A small ONNX graph builder: inputs and outputs with a dynamic batch axis, weights as initialisers (under their
/// Pictor parameter names), and one method per standard operator used, all at the default domain's opset 17
/// (docs/onnx.md lists them). Values are named strings; every node gets a fresh output name. The protobuf classes are
/// generated from onnx.proto3 by protoc at build time.
/// </summary>
internal sealed class OnnxGraph
{
    /// <summary>The default-domain opset every exported graph imports.</summary>
    public const int Opset = 17;
    /// <summary>The IR version that goes with opset 17 (ONNX 1.12).</summary>
    public const long IrVersion = 8;
    /// <summary>The symbolic name of every graph's dynamic batch axis.</summary>
    public const string BatchAxis = "batch";

    private readonly GraphProto graph;
    private readonly HashSet<string> initialisers = new(StringComparer.Ordinal);
    private readonly SortedSet<string> ops = new(StringComparer.Ordinal);
    private int next;

    public OnnxGraph(string name) { graph = new GraphProto { Name = name }; }

    /// <summary>The operator types used so far, sorted.</summary>
    public IReadOnlyCollection<string> OpTypes => ops;

    // ------------------------------------------------------------------------------------ inputs, outputs, weights

    /// <summary>A graph input; a dimension of -1 is the dynamic batch axis.</summary>
    public string Input(string name, TensorProto.Types.DataType type, params int[] dims)
    {
        graph.Input.Add(ValueInfo(name, type, dims));
        return name;
    }

    /// <summary>Marks <paramref name="value"/> as the graph output <paramref name="name"/> (an Identity renames
    /// it).</summary>
    public void Output(string value, string name, TensorProto.Types.DataType type, params int[] dims)
    {
        Node("Identity", [value], [name]);
        graph.Output.Add(ValueInfo(name, type, dims));
    }

    /// <summary>A float initialiser from a Pictor tensor, under the tensor's parameter name (added once).</summary>
    public string Weight(string name, Tensor t)
    {
        if (initialisers.Add(name)) graph.Initializer.Add(FloatTensor(name, t.ToArray(), t.Shape));
        return name;
    }

    /// <summary>A float constant of any shape (an empty shape is a scalar).</summary>
    public string Floats(float[] values, params int[] dims) =>
        Constant(FloatTensor(Fresh("const"), values, dims));

    /// <summary>A float scalar constant.</summary>
    public string Scalar(float v) => Floats([v]);

    /// <summary>An int64 vector constant (shapes, axes, permutations given as inputs).</summary>
    public string Int64s(params long[] values)
    {
        var t = new TensorProto { Name = Fresh("const"), DataType = (int)TensorProto.Types.DataType.Int64 };
        t.Dims.Add(values.Length);
        t.Int64Data.AddRange(values);
        return Constant(t);
    }

    /// <summary>A double vector constant.</summary>
    public string Doubles(double[] values)
    {
        var t = new TensorProto { Name = Fresh("const"), DataType = (int)TensorProto.Types.DataType.Double };
        t.Dims.Add(values.Length);
        t.DoubleData.AddRange(values);
        return Constant(t);
    }

    // ------------------------------------------------------------------------------------------------ operators

    public string Add(string a, string b) => Op("Add", a, b);
    public string Sub(string a, string b) => Op("Sub", a, b);
    public string Mul(string a, string b) => Op("Mul", a, b);
    public string Div(string a, string b) => Op("Div", a, b);
    public string MatMul(string a, string b) => Op("MatMul", a, b);
    public string Sigmoid(string x) => Op("Sigmoid", x);
    public string Tanh(string x) => Op("Tanh", x);
    public string Relu(string x) => Op("Relu", x);
    public string Erf(string x) => Op("Erf", x);
    public string Sqrt(string x) => Op("Sqrt", x);
    public string Sin(string x) => Op("Sin", x);
    public string Cos(string x) => Op("Cos", x);
    public string Shape(string x) => Op("Shape", x);
    public string Gather(string data, string indices) => Op("Gather", data, indices);

    /// <summary>Gemm: a B^T + c, the Linear of a rank-2 input (B kept as PyTorch's [Out, In]).</summary>
    public string GemmTransB(string a, string b, string? c) =>
        Node("Gemm", c == null ? [a, b] : [a, b, c], attrs: [Int("transB", 1)]);

    public string Softmax(string x, int axis) => Node("Softmax", [x], attrs: [Int("axis", axis)]);
    public string Transpose(string x, params long[] perm) => Node("Transpose", [x], attrs: [Ints("perm", perm)]);
    public string Concat(int axis, params string[] xs) => Node("Concat", xs, attrs: [Int("axis", axis)]);
    public string Cast(string x, TensorProto.Types.DataType to) => Node("Cast", [x], attrs: [Int("to", (long)to)]);

    /// <summary>Reshape to <paramref name="shape"/>; 0 copies the input's dimension (the batch), -1 is
    /// inferred.</summary>
    public string Reshape(string x, params long[] shape) => Op("Reshape", x, Int64s(shape));

    /// <summary>Reshape to the runtime shape of another value (a Shape node's output).</summary>
    public string ReshapeLike(string x, string shapeOf) => Op("Reshape", x, shapeOf);

    public string Unsqueeze(string x, params long[] axes) => Op("Unsqueeze", x, Int64s(axes));

    /// <summary>ReduceMean over <paramref name="axes"/> (an attribute at opset 17; an input from 18).</summary>
    public string ReduceMean(string x, bool keepDims, params long[] axes) =>
        Node("ReduceMean", [x], attrs: [Ints("axes", axes), Int("keepdims", keepDims ? 1 : 0)]);

    /// <summary>ReduceSumSquare over <paramref name="axes"/> (an attribute at opset 17).</summary>
    public string ReduceSumSquare(string x, bool keepDims, params long[] axes) =>
        Node("ReduceSumSquare", [x], attrs: [Ints("axes", axes), Int("keepdims", keepDims ? 1 : 0)]);

    /// <summary>LayerNormalization over the last axis (standard from opset 17).</summary>
    public string LayerNormalization(string x, string scale, string bias, float eps) =>
        Node("LayerNormalization", [x, scale, bias], attrs: [Int("axis", -1), Float("epsilon", eps)]);

    public string Conv(string x, string w, string? b, int kernel, int stride, int padding, int groups) =>
        Node("Conv", b == null ? [x, w] : [x, w, b], attrs:
        [
            Ints("kernel_shape", kernel, kernel), Ints("strides", stride, stride),
            Ints("pads", padding, padding, padding, padding), Int("group", groups),
        ]);

    /// <summary>Nearest-neighbour upsampling by an integer factor over H and W (Resize, each output pixel copies
    /// input pixel floor(i / f)).</summary>
    public string UpsampleNearest(string x, int factor) =>
        Node("Resize", [x, "", Floats([1f, 1f, factor, factor], 4)], attrs:
        [
            Str("mode", "nearest"), Str("coordinate_transformation_mode", "asymmetric"), Str("nearest_mode", "floor"),
        ]);

    /// <summary>One node of a standard operator; returns its first output's name.</summary>
    public string Node(string op, string[] inputs, string[]? outputs = null, AttributeProto[]? attrs = null)
    {
        ops.Add(op);
        outputs ??= [Fresh(op)];
        var n = new NodeProto { OpType = op, Name = Fresh("node_" + op) };
        n.Input.AddRange(inputs);
        n.Output.AddRange(outputs);
        if (attrs != null) n.Attribute.AddRange(attrs);
        graph.Node.Add(n);
        return outputs[0];
    }

    // --------------------------------------------------------------------------------------------------- writing

    /// <summary>The model: this graph, opset 17, the IR version that goes with it, and Pictor as producer.</summary>
    public ModelProto Model(string docString)
    {
        var m = new ModelProto
        {
            IrVersion = IrVersion, ProducerName = "pictor", ProducerVersion = "0.1.0", DocString = docString,
            Graph = graph,
        };
        m.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = Opset });
        return m;
    }

    /// <summary>Writes the model to <paramref name="path"/>; returns its size in bytes.</summary>
    public long Save(string path, string docString)
    {
        var bytes = Model(docString).ToByteArray();
        File.WriteAllBytes(path, bytes);
        return bytes.Length;
    }

    // ---------------------------------------------------------------------------------------------------- helpers

    private string Op(string op, params string[] inputs) => Node(op, inputs);

    private string Fresh(string stem) => $"{stem}_{next++}";

    private string Constant(TensorProto t)
    {
        graph.Initializer.Add(t);
        initialisers.Add(t.Name);
        return t.Name;
    }

    private static TensorProto FloatTensor(string name, float[] values, ReadOnlySpan<int> dims)
    {
        if (!BitConverter.IsLittleEndian)
            Throw.Argument("ONNX raw_data is little-endian and this machine is not; export on a little-endian one");
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
        foreach (var d in dims) t.Dims.Add(d);
        var bytes = new byte[values.Length * sizeof(float)];
        Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
        t.RawData = ByteString.CopyFrom(bytes);
        return t;
    }

    private static ValueInfoProto ValueInfo(string name, TensorProto.Types.DataType type, int[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
            shape.Dim.Add(d < 0 ? new TensorShapeProto.Types.Dimension { DimParam = BatchAxis }
                : new TensorShapeProto.Types.Dimension { DimValue = d });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } },
        };
    }

    private static AttributeProto Int(string name, long v) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = v };

    private static AttributeProto Float(string name, float v) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = v };

    private static AttributeProto Str(string name, string v) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8(v) };

    private static AttributeProto Ints(string name, params long[] v)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.AddRange(v);
        return a;
    }
}
