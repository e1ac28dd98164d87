namespace RenderFarm.ModelGenerator.Graph;

/// <summary>
/// Declares float inputs/outputs in the model's chosen precision while the graph body stays float32:
/// a float16 model is then the same function with casts at its edges, as the engine sees from a real fp16 export.
/// </summary>
internal sealed class FloatEdges(GraphBuilder graph, bool float16)
{
    public ElementType Type => float16 ? ElementType.Float16 : ElementType.Float;

    public string Input(string name, params Dim[] shape)
    {
        string value = graph.Input(name, Type, shape);
        return float16 ? graph.Cast(value, ElementType.Float) : value;
    }

    public void Output(string value, string name, params Dim[] shape) =>
        graph.Output(float16 ? graph.Cast(value, ElementType.Float16) : value, name, Type, shape);
}
