namespace RenderFarm.Diffusion.Models;

/// <summary>A model folder or one of its files is missing or does not have the layout the engine needs.</summary>
public sealed class ModelFormatException : Exception
{
    public ModelFormatException(string message) : base(message) { }
    public ModelFormatException(string message, Exception innerException) : base(message, innerException) { }
}
